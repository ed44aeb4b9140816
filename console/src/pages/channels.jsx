// Channels: API channels with their addresses and secret, WhatsApp profiles and their QR connect page.
import { useEffect, useRef, useState } from "preact/hooks";
import { get, post } from "../api.js";
import { Empty, Failure, Field, Icon, Link, Loading, Modal, PageHeader, toast, useForm, useLoad } from "../components/ui.jsx";
import { events } from "../events.js";
import { formatDateTime, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { navigate } from "../router.js";
import { can } from "../session.js";
import { channelStateName } from "../words.js";

function Copy({ value, label }) {
  return (
    <div class="copy-field">
      <code dir="ltr" data-copy={label}>{value}</code>
      <button
        type="button"
        class="small"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(value);
            toast(t("Copied."));
          } catch {
            toast(t("Select the text and copy it."), "error");
          }
        }}
      >
        {t("Copy")}
      </button>
    </div>
  );
}

// The signed post an outside system makes, ready to paste into a terminal.
function curlExample(channel) {
  const body = JSON.stringify({ external_id: "m-1", from: "+966501234567", name: "Layla", text: "مرحبا" });
  return [
    `SECRET='${channel.secret}'`,
    `BODY='${body}'`,
    "T=$(date +%s)",
    `SIG=$(printf '%s.%s' "$T" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')`,
    `curl -s '${channel.inbound_url}' -H 'content-type: application/json' -H "X-Hub-Signature: t=$T,v1=$SIG" -d "$BODY"`,
  ].join("\n");
}

export function Channels() {
  const channels = useLoad(() => get(paths.channels), []);
  const [creating, setCreating] = useState(null);
  const [created, setCreated] = useState(null);
  useLive([events.channelStateChanged, events.clientReady, events.clientDisconnected], () => channels.reload());
  const manage = can("settings", "write");
  return (
    <div class="page">
      <PageHeader title={t("Channels")}>
        {manage && (
          <>
            <button type="button" onClick={() => setCreating("whatsapp")}><Icon name="plus" size={16} /> {t("Connect WhatsApp")}</button>
            <button type="button" class="primary" onClick={() => setCreating("api")} data-action="new-api-channel"><Icon name="plus" size={16} /> {t("New API channel")}</button>
          </>
        )}
      </PageHeader>
      <p class="muted">{t("Customers write to your WhatsApp numbers, or to any system you connect through an API channel.")}</p>
      <Loading state={channels}>
        {(items) =>
          items.length ? (
            <table class="table">
              <thead>
                <tr><th>{t("Name")}</th><th>{t("Kind")}</th><th>{t("State")}</th><th>{t("Inbound address")}</th><th>{t("Added")}</th><th /></tr>
              </thead>
              <tbody>
                {items.map((channel) => (
                  <tr key={channel.id} data-channel={channel.name}>
                    <td>{channel.name}</td>
                    <td>{channel.type === "whatsapp" ? t("WhatsApp") : t("API")}</td>
                    <td><span class={`state state-${channel.state}`}>{channelStateName(channel.state)}</span>{channel.last_error && <span class="muted small"> {channel.last_error}</span>}</td>
                    <td>{channel.inbound_url && <code dir="ltr" class="small">{channel.inbound_url}</code>}</td>
                    <td>{formatDateTime(channel.created_at, { dateStyle: "medium" })}</td>
                    <td>{channel.type === "whatsapp" && manage && <Link href={`/channels/whatsapp/${channel.id}`}>{t("Connection")}</Link>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No channels yet. Connect WhatsApp or create an API channel to receive messages.")}</Empty>
          )
        }
      </Loading>
      {creating === "api" && (
        <NewApiChannel
          onClose={(answer) => {
            setCreating(null);
            if (answer) setCreated(answer);
            channels.reload();
          }}
        />
      )}
      {creating === "whatsapp" && <NewProfile onClose={() => setCreating(null)} />}
      {created && (
        <Modal title={t("Your API channel is ready")} onClose={() => setCreated(null)} wide>
          <div class="stack" data-created-channel>
            <p>{t("Outside systems post customers' messages to the inbound address, signed with the secret. The secret is shown only now: keep it.")}</p>
            <Field label={t("Inbound address")}><Copy value={created.inbound_url} label="inbound_url" /></Field>
            <Field label={t("Receipts address")}><Copy value={created.receipts_url} label="receipts_url" /></Field>
            <Field label={t("Secret")}><Copy value={created.secret} label="secret" /></Field>
            <Field label={t("Try it: post a message from a terminal")}>
              <pre dir="ltr" class="code">{curlExample(created)}</pre>
            </Field>
            <p class="muted">{t("Replies from your team are posted to {url}, signed the same way.", { url: created.webhook_url })}</p>
            <button type="button" class="primary" onClick={() => { setCreated(null); navigate("/inbox"); }}>{t("Go to the inbox")}</button>
          </div>
        </Modal>
      )}
    </div>
  );
}

function NewApiChannel({ onClose }) {
  const form = useForm({ name: "", webhook_url: "" }, async (values) => {
    const answer = await post(paths.channels, { type: "api", ...values });
    onClose(answer);
  });
  return (
    <Modal title={t("New API channel")} onClose={() => onClose(null)}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name")} error={form.errors.name}><input name="name" required value={form.values.name} onInput={form.set("name")} /></Field>
        <Field label={t("Where replies are sent (webhook URL)")} error={form.errors.webhook_url} hint={t("Your system receives your team's replies here.")}>
          <input name="webhook_url" type="url" dir="ltr" required placeholder="https://example.com/hub-webhook" value={form.values.webhook_url} onInput={form.set("webhook_url")} />
        </Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Create the channel")}</button>
      </form>
    </Modal>
  );
}

function NewProfile({ onClose }) {
  const form = useForm({ name: "" }, async (values) => {
    const profile = await post(paths.whatsapp.profiles, values);
    onClose();
    navigate(`/channels/whatsapp/${profile.id}`);
  });
  return (
    <Modal title={t("Connect WhatsApp")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name of this number")} error={form.errors.name} hint={t("For example: Sales, or Support Riyadh.")}>
          <input name="name" required value={form.values.name} onInput={form.set("name")} />
        </Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Continue")}</button>
      </form>
    </Modal>
  );
}

export function ConnectWhatsapp({ id }) {
  const [profile, setProfile] = useState(null);
  const [qr, setQr] = useState(null);
  const [failure, setFailure] = useState(null);
  const [pairing, setPairing] = useState(null);
  const connect = async () => {
    setFailure(null);
    try {
      const answer = await post(paths.whatsapp.connect, { profile_id: id, wait_seconds: 10 });
      setProfile(answer);
      if (answer.qr) setQr(answer.qr.svg);
    } catch (error) {
      setFailure(error.message);
    }
  };
  useEffect(() => {
    get(paths.whatsapp.profile(id))
      .then((answer) => {
        setProfile(answer);
        if (answer.qr) setQr(answer.qr.svg);
        if (answer.state !== "ready") connect();
      })
      .catch((error) => setFailure(error.message));
  }, [id]);
  useLive([events.qrCode, events.clientReady, events.clientDisconnected, events.channelStateChanged], (event, data) => {
    if (data.profileId !== id) return;
    if (event === events.qrCode) {
      setQr(data.svg);
      setProfile((old) => ({ ...old, state: "qr" }));
    } else if (event === events.clientReady) {
      setQr(null);
      setProfile((old) => ({ ...old, state: "ready", phone: data.phone }));
    } else if (event === events.clientDisconnected) {
      setProfile((old) => ({ ...old, state: data.reason === "logged_out" ? "logged_out" : "disconnected" }));
    } else if (event === events.channelStateChanged) {
      setProfile((old) => ({ ...old, state: data.state, last_error: data.detail }));
    }
  });
  const pairByPhone = async (event) => {
    event.preventDefault();
    const phone = new FormData(event.currentTarget).get("phone");
    try {
      const answer = await post(paths.whatsapp.pairPhone(id), { phone });
      setPairing(answer.code);
    } catch (error) {
      setFailure(error.message);
    }
  };
  const logout = async () => {
    if (!confirm(t("Log this number out of the hub?"))) return;
    try {
      setProfile(await post(paths.whatsapp.logout(id)));
    } catch (error) {
      setFailure(error.message);
    }
  };
  return (
    <div class="page narrow">
      <PageHeader title={profile ? profile.name : t("Connect WhatsApp")}>
        <Link href="/channels" class="button"><Icon name="back" size={16} /> {t("Channels")}</Link>
      </PageHeader>
      <Failure message={failure} />
      {profile && (
        <div class="card connect" data-state={profile.state}>
          <p>
            <span class={`state state-${profile.state}`}>{channelStateName(profile.state)}</span>
            {profile.phone && <span dir="ltr"> {profile.phone}</span>}
          </p>
          {profile.state === "ready" ? (
            <>
              <p class="notice" role="status">{t("This number is connected. Its messages arrive in the inbox.")}</p>
              <button type="button" onClick={logout}>{t("Log out")}</button>
            </>
          ) : (
            <>
              <ol class="steps">
                <li>{t("Open WhatsApp on the phone of this number.")}</li>
                <li>{t("Go to Settings, then Linked devices, then Link a device.")}</li>
                <li>{t("Point the phone at this code. It changes every few seconds; this page follows it.")}</li>
              </ol>
              {qr ? (
                <QrCode svg={qr} />
              ) : (
                <p class="muted loading">{t("Waiting for a QR code…")}</p>
              )}
              <div class="actions-row">
                <button type="button" onClick={connect}>{t("Get a new code")}</button>
              </div>
              <form class="inline-form" onSubmit={pairByPhone}>
                <input name="phone" dir="ltr" placeholder="+9665…" aria-label={t("Phone number")} />
                <button type="submit">{t("Link with a code instead")}</button>
              </form>
              {pairing && <p class="notice">{t("Enter this code on the phone: {code}", { code: pairing })}</p>}
            </>
          )}
        </div>
      )}
    </div>
  );
}

// The hub's QR image has a fixed size; a view box lets it fill the box, sharp at any size.
function QrCode({ svg }) {
  const box = useRef(null);
  useEffect(() => {
    const image = box.current?.querySelector("svg");
    if (image && !image.getAttribute("viewBox")) {
      image.setAttribute("viewBox", `0 0 ${image.getAttribute("width")} ${image.getAttribute("height")}`);
    }
  }, [svg]);
  return <div ref={box} class="qr" data-qr dangerouslySetInnerHTML={{ __html: svg }} aria-label={t("QR code")} role="img" />;
}
