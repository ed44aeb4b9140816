// Billing: the plan and its state, what the organization uses of each limit, the plans to move
// to, the card (typed into Stripe's own fields, never the hub's), the billing details and the
// invoices. Admins act; managers read.
import { useEffect, useRef, useState } from "preact/hooks";
import { get, post, query } from "../api.js";
import { Empty, Failure, Field, Loading, MoreButton, PageHeader, toast, useForm, useLoad, usePagedLoad } from "../components/ui.jsx";
import { PlanMeters } from "../components/usage.jsx";
import { events } from "../events.js";
import { formatDateTime, formatNumber, language, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { location, params } from "../router.js";
import { canBilling } from "../session.js";
import { useStore } from "../store.js";

const STATUS = {
  none: () => t("No subscription"),
  trialing: () => t("Trial"),
  active: () => t("Active"),
  past_due: () => t("Payment due"),
  unpaid: () => t("Unpaid"),
  canceled: () => t("Cancelled"),
  incomplete: () => t("Waiting for the first payment"),
  incomplete_expired: () => t("First payment never made"),
};
const MODULES = {
  whatsapp: () => t("Inbox"),
  crm: () => t("Customers"),
  ticketing: () => t("Tickets"),
  campaigns: () => t("Campaigns"),
  ai: () => t("AI assistance"),
};
const day = (value) => formatDateTime(value, { dateStyle: "long" });

export function Billing() {
  const state = useLoad(() => get(paths.billing.subscription), []);
  const plans = useLoad(() => get(paths.billing.plans), []);
  const here = useStore(location);
  const writable = canBilling("write");
  useLive([events.usageUpdated], () => state.reload());
  useEffect(() => {
    if (params(here).get("checkout") === "done") toast(t("Thank you: your subscription starts as soon as Stripe confirms the payment."));
  }, []);
  return (
    <div class="page billing">
      <PageHeader title={t("Billing")}>
        {writable && state.data?.status !== "none" && state.data && <PortalButton />}
      </PageHeader>
      <Loading state={state}>
        {(current) => (
          <>
            <Standing current={current} />
            <section class="card stack">
              <h2>{t("Usage against your plan")}</h2>
              <PlanMeters usage={current.usage} />
            </section>
            <Loading state={plans}>
              {(offered) => <PlanChoice offered={offered} current={current} writable={writable} onChanged={state.reload} />}
            </Loading>
            <Card current={current} writable={writable} onChanged={state.reload} />
            {writable && <Details current={current} onChanged={state.reload} />}
            {current.status !== "none" && <Invoices />}
          </>
        )}
      </Loading>
    </div>
  );
}

function Standing({ current }) {
  return (
    <section class="card stack" data-billing-status={current.status}>
      <h2>{current.plan_name || t("Free plan")}</h2>
      <p>
        <span class={`badge status-${current.status}`}>{(STATUS[current.status] || (() => current.status))()}</span>{" "}
        {current.interval === "year" ? t("billed yearly") : current.interval === "month" ? t("billed monthly") : ""}
      </p>
      {current.restricted && (
        <p class="failure" role="alert">
          {t("A payment is due. Until it is paid, the organization reads and receives messages but cannot send, start campaigns or invite.")}
        </p>
      )}
      {current.status === "trialing" && current.trial_end && <p>{t("The trial ends on {date}.", { date: day(current.trial_end) })}</p>}
      {current.current_period_end && !current.cancel_at_period_end && current.status !== "canceled" && (
        <p class="muted">{t("Renews on {date}.", { date: day(current.current_period_end) })}</p>
      )}
      {current.cancel_at_period_end && current.current_period_end && (
        <p data-ends>{t("Cancelled: the plan ends on {date}.", { date: day(current.current_period_end) })}</p>
      )}
      {current.pending_plan && (
        <p data-pending>{t("Moves to the {plan} plan on {date}.", { plan: current.pending_plan, date: day(current.current_period_end) })}</p>
      )}
    </section>
  );
}

function PlanChoice({ offered, current, writable, onChanged }) {
  const [interval, setInterval] = useState(current.interval || "month");
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [email, setEmail] = useState(current.billing_email || "");
  const subscribed = !["none", "canceled", "incomplete_expired"].includes(current.status);
  const choose = async (plan, { onStripe = false } = {}) => {
    setBusy(plan.code);
    setError(null);
    try {
      if (onStripe) {
        const page = await post(paths.billing.checkout, { plan: plan.code, interval, billing_email: email || undefined });
        window.location.assign(page.url);
        return;
      }
      if (subscribed) await post(paths.billing.changePlan, { plan: plan.code, interval });
      else await post(paths.billing.subscribe, { plan: plan.code, interval, billing_email: email });
      toast(t("Your plan is now {plan}.", { plan: plan.name }));
      onChanged();
    } catch (failure) {
      setError(Object.values(failure.fields || {})[0] || failure.message);
    } finally {
      setBusy(null);
    }
  };
  const cancel = async (atPeriodEnd) => {
    const question = atPeriodEnd ? t("Cancel at the end of the period paid for?") : t("Cancel now? The plan stops at once.");
    if (!confirm(question)) return;
    try {
      await post(paths.billing.cancel, { at_period_end: atPeriodEnd });
      onChanged();
    } catch (failure) {
      setError(failure.message);
    }
  };
  return (
    <section class="card stack">
      <h2>{t("Plans")}</h2>
      <div class="segmented" role="group" aria-label={t("Billing period")}>
        <button type="button" class={interval === "month" ? "active" : ""} aria-pressed={interval === "month"} onClick={() => setInterval("month")}>
          {t("Monthly")}
        </button>
        <button type="button" class={interval === "year" ? "active" : ""} aria-pressed={interval === "year"} onClick={() => setInterval("year")}>
          {t("Yearly")}
        </button>
      </div>
      {writable && !subscribed && (
        <Field label={t("Billing e-mail")} hint={t("Invoices and receipts go here.")}>
          <input type="email" name="billing_email" dir="ltr" value={email} onInput={(event) => setEmail(event.currentTarget.value)} />
        </Field>
      )}
      <Failure message={error} />
      <div class="plans">
        {offered.map((plan) => {
          const price = plan.prices.find((item) => item.interval === interval);
          const mine = plan.code === current.plan && interval === current.interval && !current.cancel_at_period_end;
          const free = plan.prices.every((item) => item.amount === 0);
          return (
            <article key={plan.code} class={`plan${mine ? " current" : ""}`} data-plan={plan.code}>
              <h3>{plan.name}</h3>
              <p class="price">
                {free ? t("Free") : price.display} {!free && <span class="muted">{interval === "year" ? t("a year") : t("a month")}</span>}
              </p>
              {plan.trial_days > 0 && !subscribed && <p class="muted">{t("{days} days free to try", { days: formatNumber(plan.trial_days) })}</p>}
              <ul class="mini-list">
                {plan.limits.map((limit) => (
                  <li key={limit.limit}>
                    <span>{limit.name}</span> <strong>{limit.value === null ? t("Unlimited") : formatNumber(limit.value)}</strong>
                  </li>
                ))}
              </ul>
              <p class="muted">{plan.modules.map((module) => (MODULES[module] || (() => module))()).join(" · ")}</p>
              {mine ? (
                <span class="badge">{t("Your plan")}</span>
              ) : (
                writable &&
                !free && (
                  <div class="actions-row">
                    <button type="button" class="primary" data-action="choose-plan" disabled={busy !== null} onClick={() => choose(plan)}>
                      {busy === plan.code ? t("Working…") : subscribed ? t("Move to this plan") : t("Choose")}
                    </button>
                    {!subscribed && (
                      <button type="button" class="link-button" data-action="checkout" disabled={busy !== null} onClick={() => choose(plan, { onStripe: true })}>
                        {t("Pay on Stripe's page")}
                      </button>
                    )}
                  </div>
                )
              )}
            </article>
          );
        })}
      </div>
      {writable && subscribed && !current.cancel_at_period_end && current.status !== "canceled" && (
        <div class="actions-row">
          <button type="button" class="link-button danger-text" data-action="cancel" onClick={() => cancel(true)}>
            {t("Cancel at the end of the period")}
          </button>
          <button type="button" class="link-button danger-text" onClick={() => cancel(false)}>
            {t("Cancel now")}
          </button>
        </div>
      )}
    </section>
  );
}

// Stripe.js, loaded once and only here (the page's policy allows exactly its address).
let stripeScript = null;
function loadStripe(address) {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  stripeScript ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = address;
    script.onload = () => resolve(window.Stripe);
    script.onerror = () => {
      stripeScript = null;
      reject(new Error(t("Stripe's card form could not be loaded. Try again in a moment.")));
    };
    document.head.appendChild(script);
  });
  return stripeScript;
}

function Card({ current, writable, onChanged }) {
  const [setup, setSetup] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [email, setEmail] = useState(current.billing_email || "");
  const mount = useRef(null);
  const stripe = useRef(null);
  const element = useRef(null);
  const start = async () => {
    setError(null);
    setBusy(true);
    try {
      const intent = await post(paths.billing.paymentMethod, { billing_email: email || undefined });
      if (!intent.publishable_key) throw new Error(t("Cards are taken on Stripe's page on this installation."));
      const Stripe = await loadStripe(intent.stripe_js);
      stripe.current = Stripe(intent.publishable_key, { locale: language }); // Stripe's own words in ours
      setSetup(intent);
    } catch (failure) {
      setError(Object.values(failure.fields || {})[0] || failure.message);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    if (!setup || !mount.current) return;
    element.current = stripe.current.elements().create("card");
    element.current.mount(mount.current);
    return () => element.current?.destroy?.();
  }, [setup]);
  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const confirmed = await stripe.current.confirmCardSetup(setup.client_secret, { payment_method: { card: element.current } });
      if (confirmed.error) throw new Error(confirmed.error.message || t("The card was refused."));
      await post(paths.billing.confirmCard, { setup_intent: setup.setup_intent });
      setSetup(null);
      toast(t("The card is saved: invoices are charged to it."));
      onChanged();
    } catch (failure) {
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  };
  const card = current.card;
  return (
    <section class="card stack" data-card>
      <h2>{t("Card")}</h2>
      {card ? (
        <p data-card-shown>
          {t("{brand} ending {last4}, expires {expires}", { brand: (card.brand || "").toUpperCase(), last4: card.last4, expires: card.expires })}
        </p>
      ) : (
        <p class="muted">{t("No card yet. Plans with a trial start without one.")}</p>
      )}
      {writable && !setup && (
        <>
          {!current.billing_email && (
            <Field label={t("Billing e-mail")}>
              <input type="email" name="card_billing_email" dir="ltr" value={email} onInput={(event) => setEmail(event.currentTarget.value)} />
            </Field>
          )}
          <div class="actions-row">
            <button type="button" data-action="add-card" disabled={busy} onClick={start}>
              {card ? t("Use another card") : t("Add a card")}
            </button>
          </div>
        </>
      )}
      {setup && (
        <form class="stack" onSubmit={save}>
          <div class="card-field" ref={mount} dir="ltr" />
          <div class="actions-row">
            <button type="submit" class="primary" data-action="save-card" disabled={busy}>
              {busy ? t("Working…") : t("Save the card")}
            </button>
            <button type="button" class="link-button" data-action="cancel-card" onClick={() => setSetup(null)}>
              {t("Cancel")}
            </button>
          </div>
        </form>
      )}
      <Failure message={error} />
    </section>
  );
}

function Details({ current, onChanged }) {
  const form = useForm(
    {
      billing_email: current.billing_email || "",
      tax_type: current.tax_id?.type || "",
      tax_value: current.tax_id?.value || "",
    },
    async (values) => {
      const body = { billing_email: values.billing_email || undefined };
      if (values.tax_type && values.tax_value) body.tax_id = { type: values.tax_type.trim(), value: values.tax_value.trim() };
      await post(paths.billing.account, body);
      toast(t("Saved."));
      onChanged();
    },
  );
  return (
    <section class="card">
      <h2>{t("Billing details")}</h2>
      <form class="stack" onSubmit={form.onSubmit} data-form="billing-details">
        <Field label={t("Billing e-mail")} error={form.errors.billing_email}>
          <input type="email" name="billing_email" dir="ltr" value={form.values.billing_email} onInput={form.set("billing_email")} />
        </Field>
        <div class="row">
          <Field label={t("Tax id type")} hint={t("As Stripe names it: sa_vat, ae_trn, eu_vat, gb_vat…")} error={form.errors["tax_id.type"]}>
            <input name="tax_type" dir="ltr" value={form.values.tax_type} onInput={form.set("tax_type")} />
          </Field>
          <Field label={t("Tax id")} error={form.errors.tax_id || form.errors["tax_id.value"]}>
            <input name="tax_value" dir="ltr" value={form.values.tax_value} onInput={form.set("tax_value")} />
          </Field>
        </div>
        <Failure message={form.failure} />
        <div class="actions-row">
          <button type="submit" disabled={form.busy}>{t("Save")}</button>
        </div>
      </form>
    </section>
  );
}

function PortalButton() {
  const [busy, setBusy] = useState(false);
  const open = async () => {
    setBusy(true);
    try {
      window.location.assign((await post(paths.billing.portal)).url);
    } catch (failure) {
      toast(failure.message, "error");
      setBusy(false);
    }
  };
  return (
    <button type="button" data-action="portal" disabled={busy} onClick={open}>
      {t("Manage on Stripe")}
    </button>
  );
}

function Invoices() {
  const list = usePagedLoad((cursor) => get(query(paths.billing.invoices, { cursor, limit: 20 })), []);
  return (
    <section class="card stack">
      <h2>{t("Invoices")}</h2>
      <Loading state={list}>
        {(items) =>
          items.length ? (
            <table class="table" data-invoices>
              <thead>
                <tr><th>{t("Date")}</th><th>{t("Number")}</th><th>{t("Amount")}</th><th>{t("Status")}</th><th /></tr>
              </thead>
              <tbody>
                {items.map((invoice) => (
                  <tr key={invoice.id} data-invoice={invoice.status}>
                    <td>{day(invoice.created)}</td>
                    <td dir="ltr" class="start">{invoice.number || "—"}</td>
                    <td>{invoice.display}</td>
                    <td>{invoiceStatus(invoice.status)}</td>
                    <td>
                      {invoice.hosted_invoice_url && <a href={invoice.hosted_invoice_url} target="_blank" rel="noopener noreferrer">{t("View")}</a>}{" "}
                      {invoice.invoice_pdf && <a href={invoice.invoice_pdf} target="_blank" rel="noopener noreferrer">PDF</a>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No invoices yet.")}</Empty>
          )
        }
      </Loading>
      <MoreButton list={list} />
    </section>
  );
}

function invoiceStatus(status) {
  return (
    {
      draft: t("Draft"),
      open: t("Open"),
      paid: t("Paid"),
      uncollectible: t("Uncollectible"),
      void: t("Void"),
    }[status] || status || "—"
  );
}
