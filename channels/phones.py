"""Phone numbers in E.164, as every channel hands them on."""

from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str, region: str | None = None) -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number."""
    candidate = raw.strip()
    if region is None and candidate[:1].isdigit():
        candidate = "+" + candidate  # channels give international numbers without the plus
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
