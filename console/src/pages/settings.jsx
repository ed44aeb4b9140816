// Organization settings: language and time zone, business hours, SLA targets, opt-out words,
// canned responses, the knowledge base, the inbox's assignment and the modules in use.
import { useState } from "preact/hooks";
import { get, patch, post, put, remove } from "../api.js";
import { Empty, Failure, Field, Icon, Loading, PageHeader, Tabs, toast, useForm, useLoad } from "../components/ui.jsx";
import { AIServer, AssistantSettings, KnowledgeBase } from "../components/knowledge.jsx";
import { Usage } from "../components/usage.jsx";
import { formatDateTime, t } from "../i18n.js";
import { paths } from "../paths.js";
import { can } from "../session.js";
import { languageName, priorityName } from "../words.js";

export function Settings() {
  const [tab, setTab] = useState("organization");
  const tabs = [
    ["organization", t("Organization")],
    ["hours", t("Business hours")],
    ["sla", t("SLA targets")],
    ["messages", t("Messages")],
    ["workspace", t("Inbox and modules")],
    ["knowledge", t("AI help")],
  ];
  return (
    <div class="page narrow">
      <PageHeader title={t("Settings")} />
      <Tabs items={tabs} value={tab} onChange={setTab} />
      {tab === "organization" && <OrganizationSettings />}
      {tab === "hours" && <BusinessHours />}
      {tab === "sla" && <SlaPolicies />}
      {tab === "messages" && (
        <>
          <OptOutWords />
          <CannedResponses />
          <ConversationLabels />
        </>
      )}
      {tab === "knowledge" && (
        <>
          <KnowledgeBase />
          {can("settings", "read") && <AssistantSettings />}
          {can("settings", "read") && <AIServer />}
        </>
      )}
      {tab === "workspace" && (
        <>
          <InboxSettings />
          <Modules />
          {can("settings", "read") && <Usage />}
        </>
      )}
    </div>
  );
}

function Saved({ form, label }) {
  return (
    <>
      <Failure message={form.failure} />
      <button type="submit" class="primary" disabled={form.busy || !can("settings", "write")}>{label || t("Save")}</button>
    </>
  );
}

function OrganizationSettings() {
  const organization = useLoad(() => get(paths.settings.organization), []);
  return <Loading state={organization}>{(data) => <OrganizationForm data={data} />}</Loading>;
}

function OrganizationForm({ data }) {
  const form = useForm({ name: data.name, default_language: data.default_language, time_zone: data.time_zone, default_region: data.default_region || "" }, async (values) => {
    await patch(paths.settings.organization, { ...values, default_region: values.default_region || null });
    toast(t("Saved."));
  });
  return (
    <form class="card stack" onSubmit={form.onSubmit}>
      <Field label={t("Organization name")} error={form.errors.name}><input value={form.values.name} onInput={form.set("name")} /></Field>
      <Field label={t("Default language")} error={form.errors.default_language} hint={t("Customers without a language of their own get messages in it.")}>
        <select name="default_language" value={form.values.default_language} onChange={form.set("default_language")}>
          <option value="ar">{languageName("ar")}</option>
          <option value="en">{languageName("en")}</option>
        </select>
      </Field>
      <Field label={t("Time zone")} error={form.errors.time_zone}><input dir="ltr" value={form.values.time_zone} onInput={form.set("time_zone")} placeholder="Asia/Riyadh" /></Field>
      <Field label={t("Country for numbers written without +")} error={form.errors.default_region}><input dir="ltr" maxLength={2} value={form.values.default_region} onInput={form.set("default_region")} placeholder="SA" /></Field>
      <Saved form={form} />
    </form>
  );
}

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

function dayName(day) {
  // 2023-01-01 was a Sunday.
  const date = new Date(Date.UTC(2023, 0, 1 + DAYS.indexOf(day)));
  return formatDateTime(date, { weekday: "long", timeZone: "UTC" });
}

function BusinessHours() {
  const settings = useLoad(() => get(paths.tickets.settings), []);
  return <Loading state={settings}>{(data) => <HoursForm data={data} />}</Loading>;
}

function HoursForm({ data }) {
  const initial = Object.fromEntries(DAYS.map((day) => [day, data.business_hours[day]?.[0] || null]));
  const [hours, setHours] = useState(initial);
  const [holidays, setHolidays] = useState(data.holidays.join("\n"));
  const [errors, setErrors] = useState({});
  const save = async (event) => {
    event.preventDefault();
    const business_hours = Object.fromEntries(DAYS.map((day) => [day, hours[day] ? [hours[day]] : []]));
    try {
      await patch(paths.tickets.settings, {
        business_hours,
        holidays: holidays.split(/\s+/).filter(Boolean),
      });
      setErrors({});
      toast(t("Saved."));
    } catch (error) {
      setErrors(error.fields || { business_hours: error.message });
    }
  };
  return (
    <form class="card stack" onSubmit={save}>
      <p class="muted small">{t("SLA clocks run only in business hours. With no hours on any day, they run round the clock.")}</p>
      <table class="table compact">
        <tbody>
          {DAYS.map((day) => (
            <tr key={day}>
              <td>
                <label class="toggle">
                  <input type="checkbox" checked={!!hours[day]} onChange={(event) => setHours({ ...hours, [day]: event.currentTarget.checked ? ["09:00", "17:00"] : null })} />
                  {dayName(day)}
                </label>
              </td>
              <td>
                {hours[day] ? (
                  <span class="row">
                    <input type="time" aria-label={t("Opens")} value={hours[day][0]} onInput={(event) => setHours({ ...hours, [day]: [event.currentTarget.value, hours[day][1]] })} />
                    <input type="time" aria-label={t("Closes")} value={hours[day][1] === "24:00" ? "23:59" : hours[day][1]} onInput={(event) => setHours({ ...hours, [day]: [hours[day][0], event.currentTarget.value] })} />
                  </span>
                ) : (
                  <span class="muted">{t("Closed")}</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {errors.business_hours && <p class="failure small">{errors.business_hours}</p>}
      <Field label={t("Holidays (one date per line, YYYY-MM-DD)")} error={errors.holidays}>
        <textarea dir="ltr" rows={4} value={holidays} onInput={(event) => setHolidays(event.currentTarget.value)} />
      </Field>
      <button type="submit" class="primary" disabled={!can("settings", "write") && !can("ticketing", "write")}>{t("Save")}</button>
    </form>
  );
}

function SlaPolicies() {
  const policies = useLoad(() => get(paths.tickets.slaPolicies), []);
  return (
    <Loading state={policies}>
      {(items) => (
        <div class="card stack">
          <p class="muted small">{t("How soon each priority must get a first response and be resolved, in minutes.")}</p>
          {["urgent", "high", "normal", "low"].map((priority) => (
            <SlaRow key={priority} priority={priority} policy={items.find((item) => item.priority === priority)} onSaved={policies.reload} />
          ))}
        </div>
      )}
    </Loading>
  );
}

function SlaRow({ priority, policy, onSaved }) {
  const form = useForm(
    {
      first_response_minutes: policy?.first_response_minutes ?? "",
      resolution_minutes: policy?.resolution_minutes ?? "",
      business_hours_only: policy?.business_hours_only ?? true,
    },
    async (values) => {
      if (values.first_response_minutes === "" && values.resolution_minutes === "") {
        if (policy) await remove(paths.tickets.slaPolicy(priority));
      } else {
        await put(paths.tickets.slaPolicy(priority), {
          first_response_minutes: Number(values.first_response_minutes),
          resolution_minutes: Number(values.resolution_minutes),
          business_hours_only: values.business_hours_only,
        });
      }
      toast(t("Saved."));
      onSaved();
    },
  );
  return (
    <form class="sla-row" onSubmit={form.onSubmit}>
      <strong>{priorityName(priority)}</strong>
      <Field label={t("First response")} error={form.errors.first_response_minutes}><input type="number" min="1" value={form.values.first_response_minutes} onInput={form.set("first_response_minutes")} /></Field>
      <Field label={t("Resolution")} error={form.errors.resolution_minutes}><input type="number" min="1" value={form.values.resolution_minutes} onInput={form.set("resolution_minutes")} /></Field>
      <label class="toggle"><input type="checkbox" checked={form.values.business_hours_only} onChange={form.set("business_hours_only")} /> {t("Business hours only")}</label>
      <Saved form={form} />
    </form>
  );
}

function OptOutWords() {
  const settings = useLoad(() => get(paths.crm.settings), []);
  return <Loading state={settings}>{(data) => <OptOutForm data={data} />}</Loading>;
}

function OptOutForm({ data }) {
  const form = useForm({ words: data.opt_out_keywords.join("\n") }, async (values) => {
    await patch(paths.crm.settings, { opt_out_keywords: values.words.split("\n").map((word) => word.trim()).filter(Boolean) });
    toast(t("Saved."));
  });
  return (
    <form class="card stack" onSubmit={form.onSubmit}>
      <h2>{t("Opt-out words")}</h2>
      <p class="muted small">{t("A customer who writes only one of these words gets no more campaigns, and is told so in their language.")}</p>
      <Field label={t("One word or phrase per line")} error={form.errors.opt_out_keywords}>
        <textarea name="opt_out_keywords" rows={6} dir="auto" value={form.values.words} onInput={form.set("words")} />
      </Field>
      <Saved form={form} />
    </form>
  );
}

function CannedResponses() {
  const responses = useLoad(() => get(paths.inbox.cannedResponses), []);
  const form = useForm({ shortcode: "", content: "" }, async (values, setValues) => {
    await post(paths.inbox.cannedResponses, values);
    setValues({ shortcode: "", content: "" });
    responses.reload();
  });
  const drop = async (item) => {
    try {
      await remove(paths.inbox.cannedResponse(item.id));
      responses.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <section class="card stack">
      <h2>{t("Canned responses")}</h2>
      <p class="muted small">{t("Agents type / and the shortcode in the reply box to insert one.")}</p>
      <Loading state={responses}>
        {(items) =>
          items.length ? (
            <ul class="mini-list">
              {items.map((item) => (
                <li key={item.id}>
                  <strong dir="ltr">/{item.shortcode}</strong>
                  <span dir="auto">{item.content}</span>
                  {can("whatsapp", "write") && <button type="button" class="icon-button" aria-label={t("Delete")} onClick={() => drop(item)}><Icon name="trash" size={14} /></button>}
                </li>
              ))}
            </ul>
          ) : (
            <Empty>{t("No canned responses yet.")}</Empty>
          )
        }
      </Loading>
      {can("whatsapp", "write") && (
        <form class="stack" onSubmit={form.onSubmit}>
          <Field label={t("Shortcode")} error={form.errors.shortcode}><input dir="ltr" value={form.values.shortcode} onInput={form.set("shortcode")} placeholder="hours" /></Field>
          <Field label={t("Text")} error={form.errors.content}><textarea dir="auto" rows={3} value={form.values.content} onInput={form.set("content")} /></Field>
          <Failure message={form.failure} />
          <button type="submit">{t("Add")}</button>
        </form>
      )}
    </section>
  );
}

function InboxSettings() {
  const settings = useLoad(() => get(paths.inbox.settings), []);
  return <Loading state={settings}>{(data) => <InboxForm data={data} />}</Loading>;
}

function InboxForm({ data }) {
  const form = useForm({ auto_assign: data.auto_assign, agent_cap: data.agent_cap }, async (values) => {
    await patch(paths.inbox.settings, { auto_assign: values.auto_assign, agent_cap: Number(values.agent_cap) });
    toast(t("Saved."));
  });
  return (
    <form class="card stack" onSubmit={form.onSubmit}>
      <h2>{t("Assignment")}</h2>
      <label class="toggle">
        <input type="checkbox" checked={form.values.auto_assign} onChange={form.set("auto_assign")} />
        {t("Give new conversations in turn to the agents online now")}
      </label>
      <Field label={t("Most open conversations per agent")} error={form.errors.agent_cap}>
        <input type="number" min="1" max="1000" value={form.values.agent_cap} onInput={form.set("agent_cap")} />
      </Field>
      <Saved form={form} />
    </form>
  );
}

const MODULES = () => [
  ["whatsapp", t("Inbox and channels")],
  ["crm", t("Customers and pipeline")],
  ["ticketing", t("Tickets")],
  ["campaigns", t("Campaigns")],
  ["billing", t("Billing")],
];

function Modules() {
  const modules = useLoad(() => get(paths.settings.modules), []);
  const toggle = async (key, enabled) => {
    try {
      const updated = await patch(paths.settings.modules, { [key]: enabled });
      modules.update(() => updated);
      toast(t("Saved. The change shows for each person at their next page load."));
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <Loading state={modules}>
      {(data) => (
        <section class="card stack">
          <h2>{t("Modules")}</h2>
          <p class="muted small">{t("A module switched off disappears from everyone's console and its API answers 403.")}</p>
          {MODULES().map(([key, label]) => (
            <label class="toggle" key={key}>
              <input type="checkbox" checked={data[key]} disabled={!can("settings", "write")} onChange={(event) => toggle(key, event.currentTarget.checked)} />
              {label}
            </label>
          ))}
        </section>
      )}
    </Loading>
  );
}

function ConversationLabels() {
  const labels = useLoad(() => get(paths.inbox.labels), []);
  const form = useForm({ name: "", color: "#0f766e" }, async (values, setValues) => {
    await post(paths.inbox.labels, values);
    setValues({ name: "", color: values.color });
    labels.reload();
  });
  const drop = async (label) => {
    try {
      await remove(paths.inbox.label(label.id));
      labels.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <section class="card stack">
      <h2>{t("Conversation labels")}</h2>
      <p class="muted small">{t("The team tags conversations with these; the inbox filters by them.")}</p>
      <Loading state={labels}>
        {(items) =>
          items.length ? (
            <div class="chips">
              {items.map((label) => (
                <span class="chip" key={label.id} style={{ borderColor: label.color }}>
                  <span class="swatch" style={{ background: label.color }} /> {label.name}
                  <button type="button" class="icon-button" aria-label={t("Delete")} onClick={() => drop(label)}>
                    <Icon name="close" size={12} />
                  </button>
                </span>
              ))}
            </div>
          ) : (
            <Empty>{t("No labels yet.")}</Empty>
          )
        }
      </Loading>
      <form class="inline-form" onSubmit={form.onSubmit}>
        <input name="label" placeholder={t("New label")} aria-label={t("New label")} value={form.values.name} onInput={form.set("name")} />
        <input type="color" aria-label={t("Color")} value={form.values.color} onInput={form.set("color")} />
        <button type="submit">{t("Add")}</button>
      </form>
      {(form.errors.name || form.errors.color || form.failure) && <p class="failure small">{form.errors.name || form.errors.color || form.failure}</p>}
    </section>
  );
}
