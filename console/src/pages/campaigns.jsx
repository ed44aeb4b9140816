// Campaigns: the list, the creation flow with a live preview, and the live progress and results.
import { useEffect, useRef, useState } from "preact/hooks";
import { get, patch, post, query, remove, upload } from "../api.js";
import { Message } from "../components/conversation/message.jsx";
import { handled, ProgressBar, useCampaignsLive } from "../components/progress.jsx";
import { Empty, Failure, Field, Icon, Link, Loading, Modal, MoreButton, PageHeader, Tabs, useLoad, useNow, usePagedLoad } from "../components/ui.jsx";
import { events } from "../events.js";
import { formatDateTime, formatDuration, formatNumber, formatRelative, language, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { navigate } from "../router.js";
import { can } from "../session.js";
import { campaignStatusName, channelStateName, languageName } from "../words.js";

export function Campaigns() {
  const campaigns = usePagedLoad((cursor) => get(query(paths.campaigns.list, { limit: 50, cursor })), []);
  useCampaignsLive(campaigns);
  return (
    <div class="page">
      <PageHeader title={t("Campaigns")}>
        {can("campaigns", "write") && (
          <Link href="/campaigns/new" class="button primary" data-action="new-campaign"><Icon name="plus" size={16} /> {t("New campaign")}</Link>
        )}
      </PageHeader>
      <Loading state={campaigns}>
        {(items) =>
          items.length ? (
            <table class="table">
              <thead>
                <tr><th>{t("Campaign")}</th><th>{t("State")}</th><th>{t("Progress")}</th><th>{t("Recipients")}</th><th>{t("Created")}</th></tr>
              </thead>
              <tbody>
                {items.map((campaign) => (
                  <tr key={campaign.id} class="clickable" onClick={() => navigate(`/campaigns/${campaign.id}`)}>
                    <td><Link href={`/campaigns/${campaign.id}`}>{campaign.name}</Link></td>
                    <td><span class={`state state-${campaign.status}`}>{campaignStatusName(campaign.status)}</span></td>
                    <td class="progress-cell"><ProgressBar current={handled(campaign)} total={campaign.total} /></td>
                    <td>{formatNumber(campaign.total)}</td>
                    <td>{formatDateTime(campaign.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No campaigns yet.")}</Empty>
          )
        }
      </Loading>
      <MoreButton list={campaigns} />
    </div>
  );
}

// The creation flow: recipients, message, sending numbers and pacing, schedule.
export function NewCampaign() {
  const [name, setName] = useState("");
  const [source, setSource] = useState("segment");
  const [segmentId, setSegmentId] = useState("");
  const [picked, setPicked] = useState([]);
  const [file, setFile] = useState(null);
  const [phoneColumn, setPhoneColumn] = useState("phone");
  const [template, setTemplate] = useState({ ar: "", en: "" });
  const [channelIds, setChannelIds] = useState([]);
  const [startsAt, setStartsAt] = useState("");
  const [windowStart, setWindowStart] = useState("");
  const [windowEnd, setWindowEnd] = useState("");
  const [avoidRepeats, setAvoidRepeats] = useState(false);
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const segments = useLoad(() => get(paths.crm.segments), []);
  const channels = useLoad(() => get(paths.channels), []);
  const pacing = useLoad(() => get(paths.campaigns.pacing), []);
  const [editingPacing, setEditingPacing] = useState(null);

  const chosenSegment = segments.data?.find((segment) => segment.id === segmentId);
  const filled = Object.fromEntries(Object.entries(template).filter(([, text]) => text.trim()));

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setFailure(null);
    try {
      const audience = {};
      if (source === "segment") audience.segment_id = segmentId || null;
      else if (source === "customers") audience.customer_ids = picked.map((customer) => customer.id);
      else if (file) {
        audience.media_id = (await upload(file)).id;
        audience.phone_column = phoneColumn || "phone";
      }
      const body = { name, channel_ids: channelIds, template: filled, audience, avoid_repeats: avoidRepeats };
      if (startsAt) body.starts_at = new Date(startsAt).toISOString();
      if (windowStart || windowEnd) {
        body.window_start = windowStart || null;
        body.window_end = windowEnd || null;
      }
      const campaign = await post(paths.campaigns.list, body);
      navigate(`/campaigns/${campaign.id}`);
    } catch (error) {
      setErrors(error.fields || {});
      setFailure(error.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="page narrow">
      <PageHeader title={t("New campaign")}>
        <Link href="/campaigns" class="button"><Icon name="back" size={16} /> {t("Campaigns")}</Link>
      </PageHeader>
      <form class="stack" onSubmit={submit}>
        <section class="card stack">
          <h2>{t("1. Name")}</h2>
          <Field label={t("Campaign name")} error={errors.name}>
            <input name="name" required value={name} onInput={(event) => setName(event.currentTarget.value)} />
          </Field>
        </section>
        <section class="card stack">
          <h2>{t("2. Recipients")}</h2>
          <Tabs items={[["segment", t("A segment")], ["customers", t("Chosen customers")], ["file", t("A CSV file")]]} value={source} onChange={setSource} />
          {source === "segment" && (
            <Field label={t("Segment")} error={errors["audience.segment_id"] || errors.audience}>
              <select name="segment" value={segmentId} onChange={(event) => setSegmentId(event.currentTarget.value)}>
                <option value="">{t("Choose a segment")}</option>
                {(segments.data || []).map((segment) => <option value={segment.id}>{segment.name}</option>)}
              </select>
              {chosenSegment && (
                <span class="field-hint" data-counts>
                  {t("{sendable} will receive it; {opted_out} opted out and are left out.", { sendable: formatNumber(chosenSegment.counts.sendable), opted_out: formatNumber(chosenSegment.counts.opted_out) })}
                </span>
              )}
            </Field>
          )}
          {source === "customers" && <CustomerPicker picked={picked} onChange={setPicked} error={errors["audience.customer_ids"] || errors.audience} />}
          {source === "file" && (
            <>
              <Field label={t("CSV file with a phone column")} error={errors["audience.media_id"] || errors.audience}>
                <input type="file" accept=".csv,text/csv" onChange={(event) => setFile(event.currentTarget.files[0] || null)} />
              </Field>
              <Field label={t("Name of the phone column")}>
                <input dir="ltr" value={phoneColumn} onInput={(event) => setPhoneColumn(event.currentTarget.value)} />
              </Field>
            </>
          )}
          <p class="muted small">{t("Duplicates, opted-out customers and unreadable numbers are left out; the campaign page counts them.")}</p>
        </section>
        <section class="card stack">
          <h2>{t("3. Message")}</h2>
          <p class="muted small">{t("Each customer gets the message in their language, else the organization's. Use {variable} for a field with a fallback, and {variation} for variations.", { variable: "{{first_name | friend}}", variation: "{Hello|Hi}" })}</p>
          <div class="template-grid">
            {["ar", "en"].map((code) => (
              <Field key={code} label={languageName(code)} error={errors[`template.${code}`]}>
                <textarea
                  name={`template-${code}`}
                  lang={code}
                  dir={code === "ar" ? "rtl" : "ltr"}
                  rows={4}
                  value={template[code]}
                  onInput={(event) => setTemplate({ ...template, [code]: event.currentTarget.value })}
                />
              </Field>
            ))}
          </div>
          {errors.template && <p class="failure small">{errors.template}</p>}
          <TemplatePreview template={filled} />
        </section>
        <section class="card stack">
          <h2>{t("4. Sending numbers and pacing")}</h2>
          {errors.channel_ids && <p class="failure small">{errors.channel_ids}</p>}
          <Loading state={channels}>
            {(items) =>
              items.length ? (
                <ul class="choice-list">
                  {items.map((channel) => {
                    const rules = pacing.data?.find((item) => item.channel_id === channel.id);
                    return (
                      <li key={channel.id}>
                        <label class="toggle">
                          <input
                            type="checkbox"
                            name="channel"
                            value={channel.id}
                            checked={channelIds.includes(channel.id)}
                            onChange={(event) =>
                              setChannelIds(event.currentTarget.checked ? [...channelIds, channel.id] : channelIds.filter((item) => item !== channel.id))
                            }
                          />
                          <strong>{channel.name}</strong>
                          <span class="muted">{channel.type === "whatsapp" ? t("WhatsApp") : t("API")} · {channelStateName(channel.state)}</span>
                        </label>
                        {rules && (
                          <span class="muted small pacing-summary">
                            {describePacing(rules.rules)}{" "}
                            <button type="button" class="link-button" onClick={() => setEditingPacing(rules)}>{t("Change")}</button>
                          </span>
                        )}
                      </li>
                    );
                  })}
                </ul>
              ) : (
                <Empty>{t("Connect a channel first.")}</Empty>
              )
            }
          </Loading>
        </section>
        <section class="card stack">
          <h2>{t("5. When")}</h2>
          <Field label={t("Start at (leave empty to start by hand)")} error={errors.starts_at}>
            <input type="datetime-local" value={startsAt} onInput={(event) => setStartsAt(event.currentTarget.value)} />
          </Field>
          <div class="row">
            <Field label={t("Send only from")} error={errors.window_start}><input type="time" value={windowStart} onInput={(event) => setWindowStart(event.currentTarget.value)} /></Field>
            <Field label={t("until")} error={errors.window_end}><input type="time" value={windowEnd} onInput={(event) => setWindowEnd(event.currentTarget.value)} /></Field>
          </div>
          <label class="toggle">
            <input type="checkbox" checked={avoidRepeats} onChange={(event) => setAvoidRepeats(event.currentTarget.checked)} />
            {t("Never send the same text to a customer twice within a day")}
          </label>
        </section>
        <Failure message={failure} />
        <button type="submit" class="primary wide" disabled={busy} data-action="save-campaign">{t("Save the campaign")}</button>
      </form>
      {editingPacing && <PacingDialog pacing={editingPacing} onClose={() => { setEditingPacing(null); pacing.reload(); }} />}
    </div>
  );
}

function describePacing(rules) {
  const parts = [t("{seconds} s between messages", { seconds: formatNumber(rules.min_gap_seconds) })];
  if (rules.jitter_seconds) parts.push(t("plus up to {seconds} s", { seconds: formatNumber(rules.jitter_seconds) }));
  if (rules.hourly_cap) parts.push(t("{count} an hour", { count: formatNumber(rules.hourly_cap) }));
  if (rules.daily_cap) parts.push(t("{count} a day", { count: formatNumber(rules.daily_cap) }));
  return parts.join(" · ");
}

function PacingDialog({ pacing, onClose }) {
  const [values, setValues] = useState({
    min_gap_seconds: pacing.rules.min_gap_seconds,
    jitter_seconds: pacing.rules.jitter_seconds,
    hourly_cap: pacing.rules.hourly_cap ?? "",
    daily_cap: pacing.rules.daily_cap ?? "",
  });
  const [errors, setErrors] = useState({});
  const set = (key) => (event) => setValues({ ...values, [key]: event.currentTarget.value });
  const save = async (event) => {
    event.preventDefault();
    try {
      await patch(paths.campaigns.channelPacing(pacing.channel_id), {
        min_gap_seconds: Number(values.min_gap_seconds),
        jitter_seconds: Number(values.jitter_seconds),
        hourly_cap: values.hourly_cap === "" ? null : Number(values.hourly_cap),
        daily_cap: values.daily_cap === "" ? null : Number(values.daily_cap),
      });
      onClose();
    } catch (error) {
      setErrors(error.fields || { min_gap_seconds: error.message });
    }
  };
  return (
    <Modal title={t("Pacing of {name}", { name: pacing.name })} onClose={onClose}>
      <form class="stack" onSubmit={save}>
        <p class="muted small">{t("Slower sending protects a WhatsApp number from being blocked.")}</p>
        <div class="row">
          <Field label={t("Seconds between messages")} error={errors.min_gap_seconds}><input type="number" min="0" step="0.1" value={values.min_gap_seconds} onInput={set("min_gap_seconds")} /></Field>
          <Field label={t("Random extra seconds, up to")} error={errors.jitter_seconds}><input type="number" min="0" step="0.1" value={values.jitter_seconds} onInput={set("jitter_seconds")} /></Field>
        </div>
        <div class="row">
          <Field label={t("Most per hour")} error={errors.hourly_cap}><input type="number" min="1" value={values.hourly_cap} onInput={set("hourly_cap")} /></Field>
          <Field label={t("Most per day")} error={errors.daily_cap}><input type="number" min="1" value={values.daily_cap} onInput={set("daily_cap")} /></Field>
        </div>
        <button type="submit" class="primary">{t("Save")}</button>
      </form>
    </Modal>
  );
}

function CustomerPicker({ picked, onChange, error }) {
  const [search, setSearch] = useState("");
  const [found, setFound] = useState([]);
  useEffect(() => {
    if (search.trim().length < 2) return setFound([]);
    const timer = setTimeout(() => get(query(paths.crm.customers, { q: search.trim(), limit: 10 })).then((page) => setFound(page.items)), 200);
    return () => clearTimeout(timer);
  }, [search]);
  return (
    <Field label={t("Customers")} error={error}>
      <input type="search" placeholder={t("Search name, phone or e-mail")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      <ul class="pick-list">
        {found.filter((customer) => !picked.some((item) => item.id === customer.id)).map((customer) => (
          <li key={customer.id}><button type="button" onClick={() => onChange([...picked, customer])}><Icon name="plus" size={14} /> {customer.name} <span class="muted" dir="ltr">{customer.phone}</span></button></li>
        ))}
      </ul>
      <div class="chips">
        {picked.map((customer) => (
          <span class="chip" key={customer.id}>{customer.name} <button type="button" class="icon-button" onClick={() => onChange(picked.filter((item) => item.id !== customer.id))} aria-label={t("Remove")}><Icon name="close" size={12} /></button></span>
        ))}
      </div>
      <span class="field-hint">{t("{count} chosen", { count: formatNumber(picked.length) })}</span>
    </Field>
  );
}

function TemplatePreview({ template }) {
  const [preview, setPreview] = useState(null);
  const [problem, setProblem] = useState(null);
  const key = JSON.stringify(template);
  useEffect(() => {
    if (!Object.keys(template).length) {
      setPreview(null);
      return;
    }
    const timer = setTimeout(async () => {
      try {
        const answer = await post(paths.campaigns.preview, { template });
        setPreview(answer.messages);
        setProblem(null);
      } catch (error) {
        setProblem(Object.values(error.fields || {})[0] || error.message);
      }
    }, 300);
    return () => clearTimeout(timer);
  }, [key]);
  if (!preview && !problem) return null;
  return (
    <div class="preview" aria-live="polite">
      <h3>{t("Preview for a sample customer")}</h3>
      {problem && <p class="failure small">{problem}</p>}
      {preview &&
        Object.entries(preview).map(([code, text]) => (
          <div class="preview-bubble" key={code} lang={code} dir={code === "ar" ? "rtl" : "ltr"} data-preview={code}>
            <span class="muted small">{languageName(code)}</span>
            <p>{text}</p>
          </div>
        ))}
    </div>
  );
}

// The campaign as it runs: controls, live progress with an estimated finish, and its results.
export function CampaignPage({ id }) {
  const campaign = useLoad(() => get(paths.campaigns.campaign(id)), [id]);
  const results = useLoad(() => get(paths.campaigns.results(id)), [id]);
  const [failure, setFailure] = useState(null);
  const samples = useRef([]);
  useNow(); // redrawn every second, so the estimated finish counts down

  useLive([events.campaignProgress, events.campaignCompleted, events.campaignUpdated], (event, data) => {
    if (data.campaignId !== id) return;
    if (event === events.campaignProgress) {
      samples.current = [...samples.current.slice(-30), { at: Date.now(), current: data.current }];
      campaign.update((old) => old && { ...old, ...data, status: data.status || old.status });
      return;
    }
    campaign.reload();
    results.reload();
  });
  useEffect(() => {
    if (campaign.data?.status === "running") {
      const timer = setInterval(() => results.reload(), 15000);
      return () => clearInterval(timer);
    }
  }, [campaign.data?.status]);

  const act = async (action) => {
    setFailure(null);
    try {
      await post(paths.campaigns.act(id, action));
      campaign.reload();
    } catch (error) {
      setFailure(error.message);
    }
  };
  const deleteCampaign = async () => {
    if (!confirm(t("Delete this campaign?"))) return;
    try {
      await remove(paths.campaigns.campaign(id));
      navigate("/campaigns");
    } catch (error) {
      setFailure(error.message);
    }
  };

  // The rate over the last progress updates gives the estimated finish.
  const eta = (current, total) => {
    const points = samples.current;
    if (points.length < 2 || current >= total) return null;
    const first = points[0];
    const last = points[points.length - 1];
    const rate = (last.current - first.current) / ((last.at - first.at) / 1000);
    if (!(rate > 0)) return null;
    return (total - current) / rate;
  };

  return (
    <div class="page">
      <Loading state={campaign}>
        {(item) => {
          const current = handled(item);
          const remaining = Math.max(0, item.total - current);
          const left = item.status === "running" ? eta(current, item.total) : null;
          const writable = can("campaigns", "write");
          const report = item.audience_report || {};
          return (
            <>
              <PageHeader title={item.name}>
                <Link href="/campaigns" class="button"><Icon name="back" size={16} /> {t("Campaigns")}</Link>
                {writable && ["draft", "scheduled"].includes(item.status) && (
                  <button type="button" class="primary" data-action="start" disabled={item.audience_status !== "ready"} onClick={() => act("start")}>{t("Start now")}</button>
                )}
                {writable && item.status === "running" && <button type="button" data-action="pause" onClick={() => act("pause")}>{t("Pause")}</button>}
                {writable && item.status === "paused" && <button type="button" class="primary" data-action="resume" onClick={() => act("resume")}>{t("Resume")}</button>}
                {writable && ["running", "paused", "scheduled"].includes(item.status) && (
                  <button type="button" class="danger" data-action="cancel" onClick={() => confirm(t("Cancel this campaign? Messages not yet sent will not be sent.")) && act("cancel")}>{t("Cancel")}</button>
                )}
                {writable && ["draft", "completed", "cancelled"].includes(item.status) && (
                  <button type="button" class="danger" onClick={deleteCampaign}>{t("Delete")}</button>
                )}
              </PageHeader>
              <Failure message={failure} />
              {item.pause_message && item.status === "paused" && <p class="notice warn" role="status">{item.pause_message}</p>}
              <section class="card stack">
                <div class="status-line">
                  <span class={`state state-${item.status}`} data-campaign-status={item.status}>{campaignStatusName(item.status)}</span>
                  {item.starts_at && item.status === "scheduled" && <span class="muted">{t("Starts {time}", { time: formatDateTime(item.starts_at) })}</span>}
                  {item.audience_status === "building" && <span class="muted loading">{t("Preparing recipients…")}</span>}
                </div>
                <ProgressBar current={current} total={item.total} />
                <dl class="counters">
                  <div><dt>{t("Sent")}</dt><dd data-count="sent">{formatNumber(item.sent)}</dd></div>
                  <div><dt>{t("Failed")}</dt><dd data-count="failed">{formatNumber(item.failed)}</dd></div>
                  <div><dt>{t("Skipped")}</dt><dd>{formatNumber(item.skipped)}</dd></div>
                  <div><dt>{t("Remaining")}</dt><dd data-count="remaining">{formatNumber(remaining)}</dd></div>
                  <div><dt>{t("Estimated finish")}</dt><dd data-eta={left != null ? Math.round(left) : ""}>{left != null ? `${formatDuration(left)} (${formatRelative(Date.now() + left * 1000)})` : "—"}</dd></div>
                </dl>
                {item.audience_status !== "building" && (
                  <p class="muted small" data-audience>
                    {t("{will_send} will be sent. Left out: {opted_out} opted out, {duplicates} duplicates, {invalid} unreadable numbers, {no_phone} without a number.", {
                      will_send: formatNumber(report.will_send ?? item.total),
                      opted_out: formatNumber(report.opted_out || 0),
                      duplicates: formatNumber(report.duplicates || 0),
                      invalid: formatNumber(report.invalid || 0),
                      no_phone: formatNumber(report.no_phone || 0),
                    })}
                  </p>
                )}
                {(report.errors || []).length > 0 && (
                  <ul class="errors small">
                    {report.errors.map((error) => (
                      <li>{error.row ? t("Line {row}: ", { row: error.row }) : ""}{t(error.reason, error.params)}</li>
                    ))}
                  </ul>
                )}
              </section>
              <section class="card stack">
                <h2>{t("Message")}</h2>
                {Object.entries(item.template).map(([code, text]) => (
                  <div class="preview-bubble" lang={code} dir={code === "ar" ? "rtl" : "ltr"}>
                    <span class="muted small">{languageName(code)}</span>
                    <p>{text}</p>
                  </div>
                ))}
              </section>
              <Results state={results} />
            </>
          );
        }}
      </Loading>
    </div>
  );
}

function percent(value) {
  return value == null ? "—" : formatNumber(value, { style: "percent", maximumFractionDigits: 1 });
}

function Results({ state }) {
  return (
    <Loading state={state}>
      {(results) => (
        <section class="card stack results">
          <h2>{t("Results")}</h2>
          <dl class="counters">
            <div><dt>{t("Delivered")}</dt><dd>{formatNumber(results.counts.delivered)} ({percent(results.rates.delivery)})</dd></div>
            <div><dt>{t("Read")}</dt><dd>{formatNumber(results.counts.read)} ({percent(results.rates.read)})</dd></div>
            <div><dt>{t("Replied")}</dt><dd>{formatNumber(results.counts.replied)} ({percent(results.rates.reply)})</dd></div>
            <div><dt>{t("Outcome unknown")}</dt><dd>{formatNumber(results.counts.unknown)}</dd></div>
          </dl>
          <h3>{t("Sends per minute")}</h3>
          <MinuteChart minutes={results.per_minute} />
          <h3>{t("Failures by reason")}</h3>
          {results.failures.length ? (
            <table class="table">
              <thead><tr><th>{t("Reason")}</th><th>{t("Messages")}</th></tr></thead>
              <tbody>{results.failures.map((failure) => <tr><td>{failure.reason}</td><td>{formatNumber(failure.count)}</td></tr>)}</tbody>
            </table>
          ) : (
            <Empty>{t("No failures.")}</Empty>
          )}
          {results.channels.length > 0 && (
            <>
              <h3>{t("By sending number")}</h3>
              <table class="table">
                <thead><tr><th>{t("Channel")}</th><th>{t("Sent")}</th><th>{t("Failed")}</th><th>{t("Delivered")}</th><th>{t("Read")}</th><th>{t("Replied")}</th></tr></thead>
                <tbody>
                  {results.channels.map((channel) => (
                    <tr><td>{channel.name}</td><td>{formatNumber(channel.sent)}</td><td>{formatNumber(channel.failed)}</td><td>{formatNumber(channel.delivered)}</td><td>{formatNumber(channel.read)}</td><td>{formatNumber(channel.replied)}</td></tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </section>
      )}
    </Loading>
  );
}

// Bars of sent (and failed) per minute, drawn as SVG; time runs with the reading direction.
function MinuteChart({ minutes }) {
  if (!minutes.length) return <Empty>{t("Nothing sent yet.")}</Empty>;
  const most = Math.max(1, ...minutes.map((minute) => minute.sent + minute.failed));
  const width = 600;
  const height = 160;
  const bar = Math.min(40, width / minutes.length);
  const rtl = document.documentElement.dir === "rtl";
  return (
    <figure class="chart" data-chart="per-minute">
      <svg viewBox={`0 0 ${width} ${height + 20}`} role="img" aria-label={t("Sends per minute")}>
        {minutes.map((minute, index) => {
          const x = rtl ? width - (index + 1) * bar : index * bar;
          const sentHeight = (minute.sent / most) * height;
          const failedHeight = (minute.failed / most) * height;
          return (
            <g key={minute.minute}>
              <title>{`${formatDateTime(minute.minute, { timeStyle: "short" })}: ${formatNumber(minute.sent)} / ${formatNumber(minute.failed)}`}</title>
              <rect class="bar-sent" x={x + 1} y={height - sentHeight} width={Math.max(1, bar - 2)} height={sentHeight} />
              <rect class="bar-failed" x={x + 1} y={height - sentHeight - failedHeight} width={Math.max(1, bar - 2)} height={failedHeight} />
            </g>
          );
        })}
        <text x={rtl ? width : 0} y={height + 15} class="axis" text-anchor={rtl ? "end" : "start"}>{formatDateTime(minutes[0].minute, { timeStyle: "short" })}</text>
        <text x={rtl ? 0 : width} y={height + 15} class="axis" text-anchor={rtl ? "start" : "end"}>{formatDateTime(minutes[minutes.length - 1].minute, { timeStyle: "short" })}</text>
      </svg>
      <figcaption class="legend"><span class="key sent" /> {t("Sent")} <span class="key failed" /> {t("Failed")}</figcaption>
    </figure>
  );
}
