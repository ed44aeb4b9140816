// The organization's use of the hub this month, against its limits.
import { get } from "../api.js";
import { Loading, useLoad } from "./ui.jsx";
import { formatNumber, t } from "../i18n.js";
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
