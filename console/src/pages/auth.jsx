// Register, log in, accept an invitation, forget and reset a password.
import { useState } from "preact/hooks";
import { enter, LanguageSwitch } from "../account.jsx";
import { post } from "../api.js";
import { Failure, Field, Link, useForm } from "../components/ui.jsx";
import { language, t } from "../i18n.js";
import { paths } from "../paths.js";
import { location, navigate, params } from "../router.js";
import { notice } from "../session.js";
import { useStore } from "../store.js";

function AuthPage({ title, children, footer }) {
  const expired = useStore(notice);
  return (
    <div class="auth-page">
      <div class="auth-card">
        <div class="auth-top">
          <span class="brand">{t("Hub")}</span>
          <LanguageSwitch />
        </div>
        <h1>{title}</h1>
        {expired === "expired" && <p class="notice">{t("Your session has ended. Please log in again.")}</p>}
        {children}
        {footer && <div class="auth-footer">{footer}</div>}
      </div>
    </div>
  );
}

function Submit({ busy, children }) {
  return (
    <button type="submit" class="primary wide" disabled={busy}>
      {busy ? t("Please wait…") : children}
    </button>
  );
}

export function Login() {
  const form = useForm({ email: "", password: "" }, async (values) => {
    const answer = await post(paths.auth.login, values);
    notice.set(null);
    await enter(answer);
    navigate("/inbox");
  });
  return (
    <AuthPage
      title={t("Log in")}
      footer={
        <>
          <Link href="/forgot-password">{t("Forgot your password?")}</Link>
          <Link href="/register">{t("Create an organization")}</Link>
        </>
      }
    >
      <form onSubmit={form.onSubmit} class="stack">
        <Field label={t("E-mail")} error={form.errors.email}>
          <input type="email" name="email" autocomplete="username" required value={form.values.email} onInput={form.set("email")} />
        </Field>
        <Field label={t("Password")} error={form.errors.password}>
          <input type="password" name="password" autocomplete="current-password" required value={form.values.password} onInput={form.set("password")} />
        </Field>
        <Failure message={form.failure} />
        <Submit busy={form.busy}>{t("Log in")}</Submit>
      </form>
    </AuthPage>
  );
}

export function Register() {
  const form = useForm({ organization_name: "", full_name: "", email: "", password: "" }, async (values) => {
    const answer = await post(paths.auth.register, { ...values, language });
    await enter(answer);
    navigate("/channels");
  });
  return (
    <AuthPage title={t("Create an organization")} footer={<Link href="/login">{t("Already have an account? Log in")}</Link>}>
      <form onSubmit={form.onSubmit} class="stack">
        <Field label={t("Organization name")} error={form.errors.organization_name}>
          <input name="organization_name" required value={form.values.organization_name} onInput={form.set("organization_name")} />
        </Field>
        <Field label={t("Full name")} error={form.errors.full_name}>
          <input name="full_name" autocomplete="name" required value={form.values.full_name} onInput={form.set("full_name")} />
        </Field>
        <Field label={t("E-mail")} error={form.errors.email}>
          <input type="email" name="email" autocomplete="username" required value={form.values.email} onInput={form.set("email")} />
        </Field>
        <Field label={t("Password")} error={form.errors.password} hint={t("At least 10 characters.")}>
          <input type="password" name="password" autocomplete="new-password" required value={form.values.password} onInput={form.set("password")} />
        </Field>
        <Failure message={form.failure} />
        <Submit busy={form.busy}>{t("Create the organization")}</Submit>
      </form>
    </AuthPage>
  );
}

export function AcceptInvitation() {
  const token = params(location.value).get("token") || "";
  const form = useForm({ full_name: "", password: "" }, async (values) => {
    const answer = await post(paths.auth.acceptInvitation, { ...values, token, language });
    await enter(answer);
    navigate("/inbox");
  });
  return (
    <AuthPage title={t("Join your team")}>
      <form onSubmit={form.onSubmit} class="stack">
        <Field label={t("Full name")} error={form.errors.full_name}>
          <input name="full_name" autocomplete="name" required value={form.values.full_name} onInput={form.set("full_name")} />
        </Field>
        <Field label={t("Choose a password")} error={form.errors.password} hint={t("At least 10 characters.")}>
          <input type="password" name="password" autocomplete="new-password" required value={form.values.password} onInput={form.set("password")} />
        </Field>
        <Failure message={form.errors.token || form.failure} />
        <Submit busy={form.busy}>{t("Accept the invitation")}</Submit>
      </form>
    </AuthPage>
  );
}

export function ForgotPassword() {
  const [sent, setSent] = useState(null);
  const form = useForm({ email: "" }, async (values) => {
    const answer = await post(paths.auth.forgotPassword, values);
    setSent(answer.detail);
  });
  return (
    <AuthPage title={t("Reset your password")} footer={<Link href="/login">{t("Back to log in")}</Link>}>
      {sent ? (
        <p class="notice" role="status">{sent}</p>
      ) : (
        <form onSubmit={form.onSubmit} class="stack">
          <Field label={t("E-mail")} error={form.errors.email}>
            <input type="email" name="email" required value={form.values.email} onInput={form.set("email")} />
          </Field>
          <Failure message={form.failure} />
          <Submit busy={form.busy}>{t("Send me a link")}</Submit>
        </form>
      )}
    </AuthPage>
  );
}

export function ResetPassword() {
  const token = params(location.value).get("token") || "";
  const [done, setDone] = useState(false);
  const form = useForm({ password: "" }, async (values) => {
    await post(paths.auth.resetPassword, { token, password: values.password });
    setDone(true);
  });
  return (
    <AuthPage title={t("Choose a new password")} footer={<Link href="/login">{t("Back to log in")}</Link>}>
      {done ? (
        <p class="notice" role="status">{t("Your password was changed. You can log in with it now.")}</p>
      ) : (
        <form onSubmit={form.onSubmit} class="stack">
          <Field label={t("New password")} error={form.errors.password} hint={t("At least 10 characters.")}>
            <input type="password" name="password" autocomplete="new-password" required value={form.values.password} onInput={form.set("password")} />
          </Field>
          <Failure message={form.errors.token || form.failure} />
          <Submit busy={form.busy}>{t("Save the new password")}</Submit>
        </form>
      )}
    </AuthPage>
  );
}
