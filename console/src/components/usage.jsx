// The organization's use of the hub: this month's figures, and each limit of its plan as a meter.
import { get } from "../api.js";
import { Link, Loading, useLoad } from "./ui.jsx";
import { events } from "../events.js";
import { formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";

export function Usage() {
  const usage = useLoad(() => get(paths.settings.usage), []);
  return (
    <Loading state={usage}>
      {(data) => (
        <section class="card stack">
          <h2>{t("Usage this month")}</h2>
          <dl class="counters">
            <div>
              <dt>{t("Messages sent")}</dt>
              <dd data-usage="messages_sent">{formatNumber(data.metrics.messages_sent || 0)}</dd>
            </div>
          </dl>
        </section>
      )}
    </Loading>
  );
}

// Each limit of the plan in force: what is used of it, as a meter (amber from 80%, red when full).
export function PlanMeters({ usage }) {
  return (
    <ul class="meters">
      {usage.map((row) => {
        const share = row.value ? Math.min(100, Math.round(((row.used || 0) / row.value) * 100)) : row.value === 0 ? 100 : 0;
        const level = share >= 100 ? "full" : share >= 80 ? "high" : "ok";
        return (
          <li key={row.limit} data-meter={row.limit} data-level={row.value === null ? "unlimited" : level}>
            <span class="meter-name">{row.name}</span>
            <span class="meter-figure">
              {row.used === null ? "—" : formatNumber(row.used)} / {row.value === null ? t("Unlimited") : formatNumber(row.value)}
            </span>
            {row.value !== null && (
              <span class="meter" role="meter" aria-valuemin="0" aria-valuemax={row.value} aria-valuenow={row.used || 0} aria-label={row.name}>
                <span class={`meter-fill ${level}`} style={{ inlineSize: `${share}%` }} />
              </span>
            )}
          </li>
        );
      })}
    </ul>
  );
}

// The overview's view of the plan: its meters, kept live, with the way to the billing page.
export function PlanUsage() {
  const state = useLoad(() => get(paths.billing.subscription), []);
  useLive([events.usageUpdated], () => state.reload());
  return (
    <Loading state={state}>
      {(current) => (
        <section class="card stack" data-plan-usage>
          <h2>
            {t("Your plan")}: {current.plan_name || t("Free plan")}
          </h2>
          <PlanMeters usage={current.usage} />
          <Link href="/billing">{t("Plans and billing")}</Link>
        </section>
      )}
    </Loading>
  );
}
