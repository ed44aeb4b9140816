// A campaign's progress as lists and pages show it, kept live by the hub's campaign events.
import { events } from "../events.js";
import { formatNumber } from "../i18n.js";
import { useLive } from "../live.js";

// How many recipients are behind it: live progress says so, else the campaign's own counts do.
export const handled = (campaign) =>
  campaign.current ?? campaign.sent + campaign.failed + campaign.skipped + campaign.unknown;

// A list of campaigns that follows the hub: progress in place, anything else reloads it.
export function useCampaignsLive(campaigns) {
  useLive([events.campaignProgress, events.campaignCompleted, events.campaignUpdated], (event, data) => {
    if (event !== events.campaignProgress) return campaigns.reload();
    campaigns.update((items) => items?.map((item) => (item.id === data.campaignId ? { ...item, ...data } : item)));
  });
}

export function ProgressBar({ current, total }) {
  const share = total ? Math.min(100, Math.round((current / total) * 100)) : 0;
  return (
    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow={share} data-progress={share}>
      <div class="progress-fill" style={{ inlineSize: `${share}%` }} />
      <span class="progress-label">{formatNumber(share / 100, { style: "percent" })}</span>
    </div>
  );
}
