// The signed-in person's own choices: entering after sign-in, and the language switch.
import { useState } from "preact/hooks";
import { get, patch } from "./api.js";
import { language, loadLanguage } from "./i18n.js";
import { session, signIn } from "./session.js";
import { languageName } from "./words.js";

export const languageChanged = new Set();

export async function chooseLanguage(code) {
  if (session.value) {
    await patch("/api/users/me", { preferred_language: code });
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
  const full = await get("/api/auth/me");
  signIn(full);
  const preferred = full.user.preferred_language;
  if (preferred && preferred !== language) await loadLanguage(preferred);
  else if (!preferred) await patch("/api/users/me", { preferred_language: language });
}

