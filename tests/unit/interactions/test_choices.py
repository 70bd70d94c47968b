"""Size autocomplete: presets by what was typed, and a typed W*H offered as itself."""

from __future__ import annotations

from bot.imaging import SIZE_PRESETS, resolve_size
from bot.interactions.choices import MAX_CHOICES, size_suggestions


def test_nothing_typed_offers_every_preset_in_order() -> None:
    choices = size_suggestions("  ")
    assert [c.value for c in choices] == [p.key for p in SIZE_PRESETS][:MAX_CHOICES]
    assert [c.name for c in choices] == [p.label for p in SIZE_PRESETS][:MAX_CHOICES]


def test_typing_filters_presets_by_label_or_key() -> None:
    assert [c.value for c in size_suggestions("PORT")] == ["portrait"]
    assert [c.value for c in size_suggestions("square")] == ["square", "small", "large"]
    assert size_suggestions("no such shape") == []


def test_a_valid_typed_size_comes_first_as_itself() -> None:
    choices = size_suggestions("768x1024")
    assert choices[0].name == "Custom (768×1024)" and choices[0].value == "768*1024"
    assert resolve_size(choices[0].value).wire == "768*1024"


def test_an_invalid_typed_size_is_not_offered() -> None:
    assert size_suggestions("99999x2") == []
    assert size_suggestions("1536*1536")[0].value == "1536*1536"


def test_every_choice_resolves_to_a_size() -> None:
    for choice in size_suggestions(""):
        assert resolve_size(choice.value) is not None
