// The sales pipeline as a board: deals move between stages by drag and drop, totals per stage.
import { useState } from "preact/hooks";
import { get, patch, post, query } from "../api.js";
import { Failure, Field, Icon, Link, Loading, Modal, PageHeader, toast, useForm, useLoad } from "../components/ui.jsx";
import { events } from "../events.js";
import { formatDateTime, formatMoney, formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { can } from "../session.js";

export function Pipeline() {
  const [mine, setMine] = useState(false);
  const board = useLoad(() => get(query(paths.crm.board, { owner: mine ? "me" : undefined })), [mine]);
  const [dragging, setDragging] = useState(null);
  const [over, setOver] = useState(null);
  const [adding, setAdding] = useState(false);
  useLive([events.dealUpdated, events.leadCreated], () => board.reload());

  const move = async (dealId, stageId) => {
    const columns = board.data;
    const from = columns.find((column) => column.deals.some((deal) => deal.id === dealId));
    if (!from || from.stage.id === stageId) return;
    const deal = from.deals.find((item) => item.id === dealId);
    // Shown at once; the board is reloaded from the hub either way.
    board.update((old) =>
      old.map((column) => {
        if (column.stage.id === from.stage.id) return { ...column, deals: column.deals.filter((item) => item.id !== dealId), count: column.count - 1 };
        if (column.stage.id === stageId) return { ...column, deals: [{ ...deal, stage_id: stageId }, ...column.deals], count: column.count + 1 };
        return column;
      }),
    );
    try {
      await patch(paths.crm.deal(dealId), { stage_id: stageId });
    } catch (error) {
      toast(error.message, "error");
    }
    board.reload();
  };

  const writable = can("crm", "write");
  return (
    <div class="page wide-page">
      <PageHeader title={t("Pipeline")}>
        <label class="toggle">
          <input type="checkbox" checked={mine} onChange={(event) => setMine(event.currentTarget.checked)} /> {t("Only my deals")}
        </label>
        {writable && (
          <button type="button" class="primary" onClick={() => setAdding(true)}>
            <Icon name="plus" size={16} /> {t("New deal")}
          </button>
        )}
      </PageHeader>
      <Loading state={board}>
        {(columns) => (
          <div class="board">
            {columns.map((column) => (
              <section
                key={column.stage.id}
                class={`board-column outcome-${column.stage.outcome}${over === column.stage.id ? " drop-target" : ""}`}
                data-stage={column.stage.name}
                onDragOver={(event) => {
                  if (!writable) return;
                  event.preventDefault();
                  setOver(column.stage.id);
                }}
                onDragLeave={() => setOver(null)}
                onDrop={(event) => {
                  event.preventDefault();
                  setOver(null);
                  const dealId = event.dataTransfer.getData("text/plain") || dragging;
                  if (dealId) move(dealId, column.stage.id);
                }}
              >
                <header>
                  <h2>{column.stage.name}</h2>
                  <span class="count">{formatNumber(column.count)}</span>
                  <div class="totals" data-totals>
                    {column.totals.length ? column.totals.map((total) => <span key={total.currency}>{formatMoney(Number(total.amount), total.currency)}</span>) : <span class="muted">{formatMoney(0, "SAR")}</span>}
                  </div>
                </header>
                <ul>
                  {column.deals.map((deal) => (
                    <li
                      key={deal.id}
                      class="deal-card"
                      data-deal={deal.title}
                      draggable={writable}
                      onDragStart={(event) => {
                        event.dataTransfer.setData("text/plain", deal.id);
                        event.dataTransfer.effectAllowed = "move";
                        setDragging(deal.id);
                      }}
                      onDragEnd={() => setDragging(null)}
                    >
                      <strong>{deal.title}</strong>
                      <span class="amount">{formatMoney(Number(deal.amount), deal.currency)}</span>
                      <Link href={`/customers/${deal.customer_id}`} class="muted small">{t("Customer")}</Link>
                      {deal.expected_close_on && <span class="muted small">{t("Expected to close {date}", { date: formatDateTime(deal.expected_close_on, { dateStyle: "medium" }) })}</span>}
                      {writable && (
                        <select
                          class="move-select"
                          aria-label={t("Move to stage")}
                          value={column.stage.id}
                          onChange={(event) => move(deal.id, event.currentTarget.value)}
                        >
                          {columns.map((other) => (
                            <option value={other.stage.id}>{other.stage.name}</option>
                          ))}
                        </select>
                      )}
                    </li>
                  ))}
                </ul>
              </section>
            ))}
          </div>
        )}
      </Loading>
      {adding && <NewDeal stages={board.data?.map((column) => column.stage) || []} onClose={() => { setAdding(false); board.reload(); }} />}
    </div>
  );
}

function NewDeal({ stages, onClose }) {
  const [customers, setCustomers] = useState([]);
  const form = useForm({ title: "", customer_id: "", amount: "0", currency: "SAR", stage_id: stages[0]?.id || "", search: "" }, async (values) => {
    await post(paths.crm.deals, {
      title: values.title,
      customer_id: values.customer_id,
      amount: values.amount || "0",
      currency: values.currency,
      stage_id: values.stage_id || null,
    });
    onClose();
  });
  const find = async (text) => {
    form.setValues((old) => ({ ...old, search: text }));
    if (text.trim().length < 2) return setCustomers([]);
    const page = await get(query(paths.crm.customers, { q: text.trim(), limit: 10 }));
    setCustomers(page.items);
  };
  return (
    <Modal title={t("New deal")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Title")} error={form.errors.title}><input required value={form.values.title} onInput={form.set("title")} /></Field>
        <Field label={t("Customer")} error={form.errors.customer_id}>
          <input type="search" placeholder={t("Search name, phone or e-mail")} value={form.values.search} onInput={(event) => find(event.currentTarget.value)} />
          <select required value={form.values.customer_id} onChange={form.set("customer_id")}>
            <option value="">{t("Choose a customer")}</option>
            {customers.map((customer) => <option value={customer.id}>{customer.name} {customer.phone || ""}</option>)}
          </select>
        </Field>
        <div class="row">
          <Field label={t("Amount")} error={form.errors.amount}><input type="number" min="0" step="0.01" value={form.values.amount} onInput={form.set("amount")} /></Field>
          <Field label={t("Currency")} error={form.errors.currency}><input maxLength={3} value={form.values.currency} onInput={form.set("currency")} /></Field>
        </div>
        <Field label={t("Stage")} error={form.errors.stage_id}>
          <select value={form.values.stage_id} onChange={form.set("stage_id")}>{stages.map((stage) => <option value={stage.id}>{stage.name}</option>)}</select>
        </Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
      </form>
    </Modal>
  );
}
