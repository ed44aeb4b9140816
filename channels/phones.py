"""Phone numbers in E.164, as every channel hands them on."""

from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str, region: str | None = None, *, possible: bool = False) -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number. With `possible`, a
    number of a plausible length is taken even where the phone metadata does not know its range
    yet: a channel that delivered a message from it has proved it exists."""
    candidate = raw.strip()
    if region is None and candidate[:1].isdigit():
        candidate = "+" + candidate  # channels give international numbers without the plus
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) and not (
        possible and phonenumbers.is_possible_number(number)
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def read_phone(text: str, region: str | None) -> str | None:
    """E.164, or None: a number without a country code is read with the region; failing that, its
    digits are taken as an international number written without the plus."""
    text = text.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    phone = normalize_phone(text, region) if region and not text.startswith("+") else None
    return phone or normalize_phone(text)
