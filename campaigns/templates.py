"""Campaign message templates: variables, fallbacks, language variants and text variations.

    {Hello|Hi|Salam} {{first_name | friend}}, your {{city}} order is ready.

`{{name}}` is a variable: one of the customer's fields or a custom attribute's key; after `|` comes
what to write when the customer has no value. `{a|b|c}` is a variation: each recipient gets one
of them, always the same one for the same recipient, so not every message is identical.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.i18n import N_

# Fields every customer has; attribute keys of the organization come beside them.
BUILT_IN = ("name", "first_name", "last_name", "phone", "email", "company")

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|([^{}]*))?\}\}")
_VARIATION = re.compile(r"(?<!\{)\{([^{}]*\|[^{}]*)\}(?!\})")


@dataclass(frozen=True)
class TemplateProblem:
    field: str
    message: str  # an N_ message id, translated by the caller
    arguments: dict[str, Any]


def variables_in(text: str) -> list[str]:
    return [match.group(1) for match in _VARIABLE.finditer(text)]


def problems(variants: Mapping[Any, str], attribute_keys: set[str]) -> list[TemplateProblem]:
    """What is wrong with the variants: an unknown variable, braces that open a variable but
    never close it."""
    found = []
    known = set(BUILT_IN) | attribute_keys
    for language, text in variants.items():
        field = f"template.{language}"
        for name in variables_in(text):
            if name not in known:
                found.append(TemplateProblem(field, N_("There is no variable named {name}."), {"name": name}))
        leftover = _VARIABLE.sub("", text)
        if "{{" in leftover or "}}" in leftover:
            found.append(TemplateProblem(field, N_("A variable is opened with {{ but not closed."), {}))
    return found


def choose_variant(variants: dict[str, str], language: str | None, default_language: str) -> str:
    """The recipient's language, else the organization's, else the first variant written."""
    for wanted in (language, default_language):
        if wanted and wanted in variants:
            return variants[wanted]
    return next(iter(variants.values()))


def customer_values(customer: Any, company_name: str | None = None) -> dict[str, str]:
    """What the variables of one customer stand for; missing values are left out."""
    name = (customer.name or "").strip()
    first, _, last = name.partition(" ")
    values = {
        "name": name,
        "first_name": first,
        "last_name": last.strip(),
        "phone": customer.phone or "",
        "email": customer.email or "",
        "company": company_name or "",
    }
    for key, value in (customer.attributes or {}).items():
        if value is not None and key not in values:
            values[key] = str(value)
    return {key: value for key, value in values.items() if value}


def render(text: str, values: dict[str, str], *, seed: str) -> str:
    """The message for one recipient: one of each variation (the same for the same seed), then the
    variables, each falling back to what follows its `|`, or to nothing."""
    chooser = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    varied = _VARIATION.sub(lambda m: chooser.choice(m.group(1).split("|")).strip(), text)
    rendered = _VARIABLE.sub(lambda m: values.get(m.group(1)) or (m.group(2) or "").strip(), varied)
    return re.sub(r"[ \t]{2,}", " ", rendered).strip()
