"""Catalogs, language choice and locale formatting."""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.i18n import (
    LOCALE_DIR,
    choose_language,
    format_date,
    format_datetime,
    format_number,
    from_accept_language,
    text_direction,
    translate,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "channels", "crm", "inbox", "tickets", "campaigns")


def source_messages() -> set[str]:
    """Every message marked with N_() in the project's code, and every t() of the web console."""
    found: set[str] = set()
    for package in PACKAGES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords={"N_": None}
        ):
            found.add(message if isinstance(message, str) else message[0])
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "console" / "src",
        method_map=[("**.js", "javascript"), ("**.jsx", "javascript")],
        keywords={"t": None},
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(language: str) -> dict[str, str]:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return {m.id: m.string for m in read_po(source) if m.id and not m.fuzzy}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_message_in_the_code_is_translated(language: str) -> None:
    messages = source_messages()
    assert len(messages) > 40
    translations = catalog(language)
    missing = sorted(m for m in messages if not translations.get(m))
    assert missing == [], f"untranslated in {language}: {missing}"
    for message in messages:
        assert placeholders(translations[message]) == placeholders(message), message


def test_arabic_translations_are_arabic() -> None:
    translations = catalog("ar")
    for message in source_messages():
        assert re.search(r"[\u0600-\u06FF]", translations[message]), message


def test_translate_formats_parameters_in_each_language() -> None:
    assert (
        translate("en", "Must be at most {limit} characters long.", limit=200)
        == "Must be at most 200 characters long."
    )
    assert (
        translate("ar", "Must be at most {limit} characters long.", limit=200)
        == "يجب ألا يزيد الطول عن 200 حرفًا."
    )
    assert translate("fr", "Not found.") == "غير موجود."  # unknown languages fall back to Arabic


@pytest.mark.parametrize(
    ("preferred", "header", "organization", "expected"),
    [
        ("en", "ar", "ar", "en"),
        (None, "en-US,en;q=0.9", "ar", "en"),
        (None, "fr-FR, ar-SA;q=0.8, en;q=0.5", "en", "ar"),
        (None, "fr, de", "en", "en"),
        (None, None, None, "ar"),
        (None, "en;q=0, ar;q=0.1", "en", "ar"),
        ("xx", "garbage;;q=abc", "en", "en"),
    ],
)
def test_language_choice(
    preferred: str | None, header: str | None, organization: str | None, expected: str
) -> None:
    assert (
        choose_language(preferred=preferred, accept_language=header, organization_default=organization)
        == expected
    )


def test_accept_language_ignores_what_we_do_not_speak() -> None:
    assert from_accept_language("de, fr") is None


def test_direction_and_formatting() -> None:
    assert text_direction("ar") == "rtl"
    assert text_direction("en") == "ltr"
    assert format_number(1234567.5, "en") == "1,234,567.5"
    assert format_number(1234567.5, "ar") == "1,234,567.5"  # Arabic in CLDR's latn digits for `ar`
    assert format_date(date(2026, 3, 1), "en") == "Mar 1, 2026"
    assert "مارس" in format_date(date(2026, 3, 1), "ar", style="long")
    moment = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    assert format_datetime(moment, "en", time_zone="Asia/Riyadh", style="short") == "3/2/26, 12:30\u202fAM"


def test_keywords_are_found_as_people_type_them() -> None:
    from hub.i18n import find_keyword

    assert find_keyword("Please STOP sending", ["stop", "unsubscribe"]) == "stop"
    assert find_keyword("it stopped working", ["stop"]) is None  # a Latin keyword is a whole word
    assert find_keyword("أرجو إلغاء الاشتراك", ["الغاء"]) == "الغاء"  # hamza or not
    assert find_keyword("والمُشكلة مستمرة", ["مشكلة"]) == "مشكلة"  # a vowel mark and a prefix
    assert find_keyword("مدرسةٌ جميلة", ["مدرسه"]) == "مدرسه"  # taa marbuta
    assert find_keyword("nothing here", ["  ", "refund"]) is None
