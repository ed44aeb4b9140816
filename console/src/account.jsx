// The signed-in person's own choices: entering after sign-in, the language switch, a new password.
import { useState } from "preact/hooks";
import { get, patch, post } from "./api.js";
import { Failure, Field, Icon, Modal, toast, useForm } from "./components/ui.jsx";
import { language, loadLanguage, t } from "./i18n.js";
import { paths } from "./paths.js";
import { session, signIn } from "./session.js";
import { languageName } from "./words.js";

// A password change under way in this tab: it ends every session, this tab's socket too, so the
// "session ended" that follows waits for the new session instead of signing out.
export let passwordChange = null;

export const languageChanged = new Set();

export async function chooseLanguage(code) {
  if (session.value) {
    await patch(paths.users.me, { preferred_language: code });
  }
  await loadLanguage(code);
}

export function LanguageSwitch() {
  const other = language === "ar" ? "en" : "ar";
  const [, redraw] = useState(0);
  return (
    <button
      type="button"
      class="language-switch"
      lang={other}
      data-language={other}
      onClick={async () => {
        await chooseLanguage(other);
        redraw((n) => n + 1);
        languageChanged.forEach((listener) => listener());
      }}
    >
      {languageName(other)}
    </button>
  );
}

// After signing in: the full session (with permissions) and the user's own language.
export async function enter(answer) {
  signIn(answer);
  const full = await get(paths.auth.me);
  signIn(full);
  const preferred = full.user.preferred_language;
  if (preferred && preferred !== language) await loadLanguage(preferred);
  else if (!preferred) await patch(paths.users.me, { preferred_language: language });
}


export function PasswordButton() {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" class="link-button" data-action="change-password" onClick={() => setOpen(true)}>
        <Icon name="key" /> {t("Change password")}
      </button>
      {open && <PasswordDialog onClose={() => setOpen(false)} />}
    </>
  );
}

function PasswordDialog({ onClose }) {
  const form = useForm({ current_password: "", password: "" }, async (values) => {
    passwordChange = post(paths.users.password, values);
    try {
      signIn(await passwordChange);
    } finally {
      passwordChange = null;
    }
    toast(t("Your password is changed. You are signed out everywhere else."));
    onClose();
  });
  return (
    <Modal title={t("Change password")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Current password")} error={form.errors.current_password}>
          <input type="password" name="current_password" autocomplete="current-password" required value={form.values.current_password} onInput={form.set("current_password")} />
        </Field>
        <Field label={t("New password")} error={form.errors.password} hint={t("At least 10 characters.")}>
          <input type="password" name="password" autocomplete="new-password" required value={form.values.password} onInput={form.set("password")} />
        </Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Change password")}</button>
      </form>
    </Modal>
  );
}
