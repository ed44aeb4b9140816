"""Translations (babel gettext catalogs for `ar` and `en`), language choice and locale formatting.

The `.po` files under `hub/locale` are the source; they are compiled in memory when first used,
so no build step can be forgotten and nothing is written into the installed package.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.dates import get_timezone
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import Translations

from hub.config import DEFAULT_LANGUAGE, LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locale"


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Marks a message for extraction; it is translated later, in the reader's language."""
    return message


class Term(str):
    """A word passed as a parameter that is itself translated (a module's name, a role)."""

    __slots__ = ()


class Names(dict[str, str]):
    """A parameter given a name in each language (a plan's, from the operator's plans file)."""


@cache
def catalog(language: str) -> Translations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        po = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, po)
    compiled.seek(0)
    return Translations(fp=compiled, domain="messages")


@cache
def messages_of(language: str) -> dict[str, str]:
    """Every translated singular message of a language, by its English text (for the web console)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        po = read_po(source, locale=language)
    return {
        m.id: m.string
        for m in po
        if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string
    }


def load_catalogs() -> None:
    """Compile every catalog now, so a broken one stops start-up instead of a later request."""
    for language in LANGUAGES:
        catalog(language)


def translate(language: str, message: str, **params: object) -> str:
    translations = catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    text = translations.gettext(message)
    if not params:
        return text
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    words = {
        k: translations.gettext(v)
        if isinstance(v, Term)
        else (v.get(chosen) or next(iter(v.values()), ""))
        if isinstance(v, Names)
        else v
        for k, v in params.items()
    }
    return text.format(**words)


def supported(language: str | None) -> str | None:
    if not language:
        return None
    base = language.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an Accept-Language header, honouring q-values."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = supported(tag)
        if language and quality > 0:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else None


def choose_language(
    *, preferred: str | None, accept_language: str | None, organization_default: str | None
) -> str:
    """The user's preference, else the browser's, else the organization's default, else Arabic."""
    return (
        supported(preferred)
        or from_accept_language(accept_language)
        or supported(organization_default)
        or DEFAULT_LANGUAGE
    )


def text_direction(language: str) -> str:
    try:
        order = Locale.parse(language).character_order
    except (UnknownLocaleError, ValueError):
        return "ltr"
    return "rtl" if order == "right-to-left" else "ltr"


def format_number(value: float | int, language: str) -> str:
    return format_decimal(value, locale=language)


def format_money(minor_units: int, currency: str, language: str) -> str:
    """An amount in the currency's smallest unit (cents), as the language writes money."""
    code = currency.upper()
    digits = get_currency_precision(code)
    return format_currency(Decimal(minor_units).scaleb(-digits), code, locale=language)


def format_date(value: date, language: str, *, style: str = "medium") -> str:
    return _format_date(value, format=style, locale=language)


def format_datetime(value: datetime, language: str, *, time_zone: str = "UTC", style: str = "medium") -> str:
    return _format_datetime(value, format=style, tzinfo=get_timezone(time_zone), locale=language)


# Keywords people type: compared without case, Arabic vowel marks, the tatweel or letter variants.
_ARABIC_MARKS = re.compile("[\u064b-\u0652\u0640]")
_PUNCTUATION = re.compile(r"[^\w\s]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي", "ة": "ه"})


def fold(text: str) -> str:
    """Text as keywords are compared: lower case, Arabic without vowel marks and letter variants."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)


def find_keyword(text: str, keywords: Iterable[str]) -> str | None:
    """The first keyword the text holds. Latin keywords are whole words (STOP is not in "stopped");
    Arabic ones may carry attached prefixes (والمشكلة holds مشكلة)."""
    folded = fold(text)
    for keyword in keywords:
        wanted = fold(keyword).strip()
        if not wanted:
            continue
        if wanted.isascii():
            if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", folded):
                return keyword
        elif wanted in folded:
            return keyword
    return None


def is_keyword(text: str, keywords: Iterable[str]) -> bool:
    """The whole message is one of the keywords (STOP, "stop!", إلغاء), not a sentence holding it."""
    folded = " ".join(_PUNCTUATION.sub(" ", fold(text)).split())
    return bool(folded) and any(folded == " ".join(fold(keyword).split()) for keyword in keywords)
