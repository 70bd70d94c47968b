"""Autocomplete choices that several commands offer: image sizes (presets, or a typed W*H)."""

from __future__ import annotations

from typing import Final

from discord import app_commands

from bot.imaging import SIZE_PRESETS, InvalidSizeError, parse_size

# Discord shows at most 25 autocomplete choices.
MAX_CHOICES: Final = 25


def size_suggestions(current: str) -> list[app_commands.Choice[str]]:
    """Presets matching what was typed, plus the typed text itself when it is a valid W*H."""
    typed = current.strip()
    choices: list[app_commands.Choice[str]] = []
    if typed:
        try:
            size = parse_size(typed)
        except InvalidSizeError:
            pass
        else:
            choices.append(app_commands.Choice(name=f"Custom ({size})", value=size.wire))
    needle = typed.lower()
    for preset in SIZE_PRESETS:
        if not needle or needle in preset.label.lower() or needle in preset.key:
            choices.append(app_commands.Choice(name=preset.label, value=preset.key))
    return choices[:MAX_CHOICES]
