// Customers: the list with search and segments, a customer's page, and their timeline.
import { useState } from "preact/hooks";
import { get, patch, post, query } from "../api.js";
import { CustomerFacts, CustomerWork } from "../components/customer.jsx";
import { Timeline } from "../components/timeline.jsx";
import { Empty, Failure, Field, Icon, Link, Loading, Modal, MoreButton, PageHeader, Tabs, toast, useForm, useLoad, usePagedLoad, useSettled } from "../components/ui.jsx";
import { events } from "../events.js";
import { formatDateTime, formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { navigate } from "../router.js";
import { can } from "../session.js";
import { languageName } from "../words.js";

export function Customers() {
  const [tab, setTab] = useState("customers");
  return (
    <div class="page">
      <PageHeader title={t("Customers")}>
        {can("crm", "write") && tab === "customers" && <NewCustomerButton />}
      </PageHeader>
      <Tabs items={[["customers", t("All customers")], ["segments", t("Segments")]]} value={tab} onChange={setTab} />
      {tab === "customers" ? <CustomerList /> : <Segments />}
    </div>
  );
}

function CustomerList() {
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const list = usePagedLoad((cursor) => get(query(paths.crm.customers, { q: searching.trim(), limit: 50, cursor })), [searching]);
  useLive([events.leadCreated], () => list.reload());
  return (
    <>
      <div class="list-filters">
        <input type="search" placeholder={t("Search name, phone or e-mail")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      </div>
      <Loading state={list}>
        {(items) =>
          items.length ? (
            <>
              <table class="table">
                <thead>
                  <tr>
                    <th>{t("Name")}</th>
                    <th>{t("Phone")}</th>
                    <th>{t("E-mail")}</th>
                    <th>{t("Tags")}</th>
                    <th>{t("Lead score")}</th>
                    <th>{t("Added")}</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((customer) => (
                    <tr key={customer.id} onClick={() => navigate(`/customers/${customer.id}`)} class="clickable">
                      <td><Link href={`/customers/${customer.id}`}>{customer.name}</Link></td>
                      <td dir="ltr" class="start">{customer.phone}</td>
                      <td dir="ltr" class="start">{customer.email}</td>
                      <td>{customer.tags.map((tag) => <span class="chip">{tag}</span>)}</td>
                      <td>{formatNumber(customer.score)}</td>
                      <td>{formatDateTime(customer.created_at, { dateStyle: "medium" })}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <MoreButton list={list} />
            </>
          ) : (
            <Empty>{t("No customers found.")}</Empty>
          )
        }
      </Loading>
    </>
  );
}

function NewCustomerButton() {
  const [open, setOpen] = useState(false);
  const form = useForm({ name: "", phone: "", email: "" }, async (values) => {
    const body = { name: values.name, phone: values.phone || null, email: values.email || null };
    const customer = await post(paths.crm.customers, body);
    setOpen(false);
    navigate(`/customers/${customer.id}`);
  });
  return (
    <>
      <button type="button" class="primary" onClick={() => setOpen(true)}><Icon name="plus" size={16} /> {t("New customer")}</button>
      {open && (
        <Modal title={t("New customer")} onClose={() => setOpen(false)}>
          <form class="stack" onSubmit={form.onSubmit}>
            <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
            <Field label={t("Phone")} error={form.errors.phone}><input dir="ltr" value={form.values.phone} onInput={form.set("phone")} /></Field>
            <Field label={t("E-mail")} error={form.errors.email}><input type="email" dir="ltr" value={form.values.email} onInput={form.set("email")} /></Field>
            <Failure message={form.failure} />
            <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
          </form>
        </Modal>
      )}
    </>
  );
}

function Segments() {
  const segments = useLoad(() => get(paths.crm.segments), []);
  const [open, setOpen] = useState(false);
  const [chosen, setChosen] = useState(null);
  return (
    <>
      {can("crm", "write") && (
        <div class="actions-row">
          <button type="button" onClick={() => setOpen(true)}><Icon name="plus" size={16} /> {t("New segment")}</button>
        </div>
      )}
      <Loading state={segments}>
        {(items) => {
          return items.length ? (
            <table class="table">
              <thead>
                <tr><th>{t("Segment")}</th><th>{t("Matching")}</th><th>{t("Can receive campaigns")}</th><th>{t("Opted out")}</th></tr>
              </thead>
              <tbody>
                {items.map((segment) => (
                  <tr key={segment.id} class="clickable" onClick={() => setChosen(segment)}>
                    <td>{segment.name}</td>
                    <td>{formatNumber(segment.counts.matching)}</td>
                    <td>{formatNumber(segment.counts.sendable)}</td>
                    <td>{formatNumber(segment.counts.opted_out)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No segments yet.")}</Empty>
          );
        }}
      </Loading>
      {open && <SegmentDialog onClose={() => { setOpen(false); segments.reload(); }} />}
      {chosen && <SegmentMembers segment={chosen} onClose={() => setChosen(null)} />}
    </>
  );
}

function SegmentDialog({ onClose }) {
  const [counts, setCounts] = useState(null);
  const filtersOf = (values) => {
    const filters = {};
    const tags = values.tags.split(",").map((tag) => tag.trim()).filter(Boolean);
    if (tags.length) filters.tags = tags;
    if (values.language) filters.languages = [values.language];
    if (values.score_min !== "") filters.score_min = Number(values.score_min);
    return filters;
  };
  const form = useForm({ name: "", tags: "", language: "", score_min: "" }, async (values) => {
    await post(paths.crm.segments, { name: values.name, filters: filtersOf(values) });
    onClose();
  });
  const preview = async () => {
    try {
      setCounts(await post(paths.crm.segmentPreview, filtersOf(form.values)));
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <Modal title={t("New segment")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
        <Field label={t("Tags (any of them)")} hint={t("Separate tags with commas.")}><input value={form.values.tags} onInput={form.set("tags")} /></Field>
        <Field label={t("Language")}>
          <select value={form.values.language} onChange={form.set("language")}>
            <option value="">{t("Any language")}</option>
            <option value="ar">{languageName("ar")}</option>
            <option value="en">{languageName("en")}</option>
          </select>
        </Field>
        <Field label={t("Lowest lead score")}><input type="number" min="0" max="100" value={form.values.score_min} onInput={form.set("score_min")} /></Field>
        {counts && (
          <p class="notice">{t("{matching} customers match; {sendable} can receive campaigns.", { matching: formatNumber(counts.matching), sendable: formatNumber(counts.sendable) })}</p>
        )}
        <Failure message={form.failure} />
        <div class="actions-row">
          <button type="button" onClick={preview}>{t("Count matching customers")}</button>
          <button type="submit" class="primary" disabled={form.busy}>{t("Save the segment")}</button>
        </div>
      </form>
    </Modal>
  );
}

function SegmentMembers({ segment, onClose }) {
  const members = useLoad(() => get(query(paths.crm.segmentCustomers(segment.id), { limit: 100 })), [segment.id]);
  return (
    <Modal title={segment.name} onClose={onClose} wide>
      <Loading state={members}>
        {(page) => (
          <ul class="pick-list">
            {page.items.map((customer) => (
              <li key={customer.id}><Link href={`/customers/${customer.id}`}>{customer.name}</Link> <span class="muted" dir="ltr">{customer.phone}</span></li>
            ))}
          </ul>
        )}
      </Loading>
    </Modal>
  );
}

export function CustomerPage({ id }) {
  const customer = useLoad(() => get(paths.crm.customer(id)), [id]);
  const [editing, setEditing] = useState(false);
  return (
    <div class="page">
      <Loading state={customer}>
        {(person) => (
          <>
            <PageHeader title={person.name}>
              <Link href="/customers" class="button"><Icon name="back" size={16} /> {t("Customers")}</Link>
              {can("crm", "write") && <button type="button" onClick={() => setEditing(true)}><Icon name="edit" size={16} /> {t("Edit")}</button>}
            </PageHeader>
            <div class="columns">
              <section class="card">
                <CustomerFacts person={person} />
                <CustomerWork customerId={person.id} />
              </section>
              <section class="card grow">
                <h2>{t("Timeline")}</h2>
                <Timeline customerId={person.id} />
              </section>
            </div>
            {editing && <EditCustomer person={person} onClose={(updated) => { setEditing(false); if (updated) customer.update(() => updated); }} />}
          </>
        )}
      </Loading>
    </div>
  );
}

function EditCustomer({ person, onClose }) {
  const form = useForm(
    { name: person.name, phone: person.phone || "", email: person.email || "", language: person.language || "", tags: person.tags.join(", ") },
    async (values) => {
      const updated = await patch(paths.crm.customer(person.id), {
        name: values.name,
        phone: values.phone || null,
        email: values.email || null,
        language: values.language || null,
        tags: values.tags.split(",").map((tag) => tag.trim()).filter(Boolean),
      });
      onClose(updated);
    },
  );
  return (
    <Modal title={t("Edit customer")} onClose={() => onClose(null)}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
        <Field label={t("Phone")} error={form.errors.phone}><input dir="ltr" value={form.values.phone} onInput={form.set("phone")} /></Field>
        <Field label={t("E-mail")} error={form.errors.email}><input dir="ltr" type="email" value={form.values.email} onInput={form.set("email")} /></Field>
        <Field label={t("Language")} error={form.errors.language}>
          <select value={form.values.language} onChange={form.set("language")}>
            <option value="">{t("The organization's language")}</option>
            <option value="ar">{languageName("ar")}</option>
            <option value="en">{languageName("en")}</option>
          </select>
        </Field>
        <Field label={t("Tags")} error={form.errors.tags} hint={t("Separate tags with commas.")}><input value={form.values.tags} onInput={form.set("tags")} /></Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
      </form>
    </Modal>
  );
}
