"""`/imagine`'s adapter: the command Discord is told about, the options it hands to the
generation service unchanged, the size suggestions, and the buttons it registers."""

from __future__ import annotations

from types import SimpleNamespace

from discord import AppCommandOptionType as Option

from bot.imaging import MAX_PROMPT_CHARS, SIZE_PRESETS
from bot.interactions.components.buttons import DYNAMIC_ITEMS
from cogs import imagine
from cogs.imagine import Imagine, size_suggestions
from tests.unit.cogs.conftest import (
    Calls,
    FakeInteraction,
    RecordingBot,
    as_interaction,
    contexts,
    installs,
    options,
)


def make_cog(generation: Calls | None = None) -> Imagine:
    return Imagine(SimpleNamespace(generation=generation or Calls()))  # type: ignore[arg-type]


def test_imagine_is_declared_for_servers_and_members_everywhere() -> None:
    command = make_cog().imagine
    assert command.name == "imagine"
    assert installs(command) == (True, True)
    assert contexts(command) == (True, True, True)
    assert options(command) == {
        "prompt": (Option.string, True, 1, MAX_PROMPT_CHARS, False),
        "size": (Option.string, False, None, None, True),
    }


async def test_the_options_go_to_the_generation_service_as_typed(
    interaction: FakeInteraction,
) -> None:
    generation = Calls()
    cog = make_cog(generation)
    await cog.imagine.callback(cog, as_interaction(interaction), "a fox", "768*512")
    await cog.imagine.callback(cog, as_interaction(interaction), "no size", None)
    assert generation.calls == [
        ("handle", (interaction, "a fox", "768*512"), {}),
        ("handle", (interaction, "no size", None), {}),
    ]
    assert interaction.answers() == []  # the service answers, not the adapter


def test_size_suggestions_offer_presets_and_a_valid_custom_size() -> None:
    everything = size_suggestions("")
    assert [c.value for c in everything] == [p.key for p in SIZE_PRESETS][:25]
    custom = size_suggestions(" 768*512 ")
    assert custom[0].name.startswith("Custom (") and custom[0].value == "768*512"
    assert size_suggestions("not a size") == []
    portrait = [p for p in SIZE_PRESETS if "portrait" in p.label.lower()]
    assert [c.value for c in size_suggestions("PORTRAIT")] == [p.key for p in portrait]


async def test_setup_registers_the_result_buttons_and_teardown_removes_them() -> None:
    bot = RecordingBot(generation=Calls())
    await imagine.setup(bot)  # type: ignore[arg-type]
    await imagine.teardown(bot)  # type: ignore[arg-type]
    assert bot.added_items == bot.removed_items == list(DYNAMIC_ITEMS)
    assert [type(cog) for cog in bot.cogs] == [Imagine]
