"""`/imagine-edit`'s adapter: an attachment and an instruction, handed to the Edit flow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from discord import AppCommandOptionType as Option

from bot.imaging import MAX_PROMPT_CHARS
from cogs import edit
from cogs.edit import ImagineEdit
from tests.unit.cogs.conftest import FakeInteraction, as_interaction, contexts, installs, options


def test_edit_is_declared_with_an_image_and_an_instruction() -> None:
    command = ImagineEdit(SimpleNamespace()).imagine_edit  # type: ignore[arg-type]
    assert command.name == "imagine-edit"
    assert options(command) == {
        "image": (Option.attachment, True, None, None, False),
        "instruction": (Option.string, True, 1, MAX_PROMPT_CHARS, False),
    }
    # Declared like /imagine (undeclared, Discord would apply the app's own install settings).
    assert installs(command) == (True, True)
    assert contexts(command) == (True, True, True)


async def test_the_upload_and_instruction_go_to_the_edit_flow(
    monkeypatch: pytest.MonkeyPatch, interaction: FakeInteraction
) -> None:
    flows: list[tuple[Any, ...]] = []

    class RecordingFlows:
        def __init__(self, generation: Any, settings: Any) -> None:
            self.made_with = (generation, settings)

        async def edit_upload(self, *args: Any) -> None:
            flows.append((self.made_with, *args))

    monkeypatch.setattr(edit, "EditFlows", RecordingFlows)
    bot = SimpleNamespace(generation=object(), settings=object())
    cog = ImagineEdit(bot)  # type: ignore[arg-type]
    image = object()
    await cog.imagine_edit.callback(cog, as_interaction(interaction), image, "make it night")
    assert flows == [((bot.generation, bot.settings), interaction, image, "make it night")]
