"""Campaign templates in Arabic and English: variables, fallbacks, variants and variations."""

from __future__ import annotations

from types import SimpleNamespace

from campaigns.templates import choose_variant, customer_values, problems, render

VARIANTS = {
    "ar": "{مرحباً|أهلاً} {{first_name | عميلنا العزيز}}، طلبك في {{city}} جاهز.",
    "en": "{Hello|Hi} {{first_name | dear customer}}, your {{city}} order is ready.",
}


def customer(name: str, language: str | None, **attributes: str) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, phone="+966500000001", email=None, language=language, attributes=attributes
    )


def test_each_customer_gets_their_language_their_values_and_a_steady_variation() -> None:
    huda = customer("هدى الشمري", "ar", city="الرياض")
    text = render(choose_variant(VARIANTS, huda.language, "en"), customer_values(huda), seed="r-1")
    assert text in ("مرحباً هدى، طلبك في الرياض جاهز.", "أهلاً هدى، طلبك في الرياض جاهز.")
    assert render(choose_variant(VARIANTS, "ar", "en"), customer_values(huda), seed="r-1") == text  # steady

    john = customer("John Smith", "en", city="Jeddah")
    english = render(choose_variant(VARIANTS, "en", "ar"), customer_values(john), seed="r-2")
    assert english in ("Hello John, your Jeddah order is ready.", "Hi John, your Jeddah order is ready.")
    # Across many recipients both variations are used.
    openings = {render("{Hello|Hi} there", {}, seed=f"r-{n}").split()[0] for n in range(40)}
    assert openings == {"Hello", "Hi"}


def test_missing_values_fall_back_and_languages_fall_back_to_the_organizations() -> None:
    nameless = customer("", None)
    # No language: the organization's (Arabic); no first name: the fallback; no city: nothing.
    text = render(choose_variant(VARIANTS, None, "ar"), customer_values(nameless), seed="r-3")
    assert text.endswith("عميلنا العزيز، طلبك في جاهز.")
    # A language with no variant of its own: the organization's default.
    assert choose_variant(VARIANTS, "fr", "en") == VARIANTS["en"]
    # Neither written: the first variant.
    assert choose_variant({"en": "x"}, "ar", "ar") == "x"


def test_unknown_variables_and_unclosed_braces_are_named() -> None:
    found = problems({"en": "Hi {{first_name}}, {{shoe_size}} {{city}}", "ar": "مرحباً {{name"}, {"city"})
    assert [(p.field, p.arguments) for p in found] == [
        ("template.en", {"name": "shoe_size"}),
        ("template.ar", {}),
    ]
    assert problems(VARIANTS, {"city"}) == []
