"""`to_embed`: a card reaches Discord as exactly the embed the wording describes, nothing cut."""

from __future__ import annotations

import datetime as dt
import json

import discord

from bot.imaging import ImageSize
from bot.interactions.transport.embeds import NO_MENTIONS, to_embed
from bot.wording import presentation as ui
from bot.wording.cards import Card, Field

EVERYTHING = Card(
    title="Title",
    description="Some *description*",
    colour=0x7C5CFF,
    fields=(Field("Inline", "one"), Field("Wide", "two", inline=False)),
    footer="Footer line",
    image="result.png",
)


def test_every_part_of_a_card_reaches_the_embed() -> None:
    assert to_embed(EVERYTHING).to_dict() == {
        "footer": {"text": "Footer line"},
        "image": {"url": "attachment://result.png"},
        "fields": [
            {"inline": True, "name": "Inline", "value": "one"},
            {"inline": False, "name": "Wide", "value": "two"},
        ],
        "flags": 0,
        "color": 0x7C5CFF,
        "type": "rich",
        "description": "Some *description*",
        "title": "Title",
    }


def test_a_bare_card_sends_only_its_title() -> None:
    assert to_embed(Card(title="Only")).to_dict() == {"flags": 0, "type": "rich", "title": "Only"}


def test_the_embed_round_trips_through_the_kept_results_json() -> None:
    # Kept results store `json.dumps(embed.to_dict())` and send `Embed.from_dict` of it later.
    sent = to_embed(EVERYTHING).to_dict()
    kept = discord.Embed.from_dict(json.loads(json.dumps(sent)))
    assert kept.to_dict() == sent


def test_adding_to_a_card_leaves_the_original_alone() -> None:
    more = EVERYTHING.with_fields(Field("Third", "three")).with_image("chart.png")
    assert [f.name for f in more.fields] == ["Inline", "Wide", "Third"]
    assert more.image == "chart.png" and EVERYTHING.image == "result.png"
    assert len(EVERYTHING.fields) == 2


def test_nothing_is_cut_to_discords_limits_here() -> None:
    # 25 fields and 6,000 characters are the wording's to keep (as when it built embeds): the
    # converter passes an oversized card on whole, so a wording bug fails loudly at Discord.
    huge = Card(
        title="t" * 300,
        description="d" * 5000,
        fields=tuple(Field(f"name {n}", "v" * 1100) for n in range(30)),
        footer="f" * 2100,
    )
    embed = to_embed(huge)
    assert len(embed.fields) == 30
    assert all(len(field.value or "") == 1100 for field in embed.fields)
    assert len(embed) == 300 + 5000 + 2100 + sum(len(f"name {n}") + 1100 for n in range(30))


def test_a_result_card_is_the_result_embed_members_have_always_received() -> None:
    job = ui.JobView(
        "a *cat*", ImageSize(1024, 1024), 42, "Ada",
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC), parent=(ui.EDIT_OF, "https://x/1"),
    )
    sent = to_embed(ui.result_card(job, filename="r.png", seconds=3.21, note="n")).to_dict()
    assert sent == {
        "image": {"url": "attachment://r.png"},
        "fields": [
            {"inline": True, "name": "Size", "value": "1024×1024"},
            {"inline": True, "name": "Took", "value": "3.2 s"},
            {"inline": True, "name": "Requested by", "value": "<@42>"},
            {"inline": False, "name": "Edit of", "value": "https://x/1"},
            {"inline": False, "name": "Note", "value": "n"},
        ],
        "flags": 0,
        "color": 0x2ECC71,
        "type": "rich",
        "description": "a \\*cat\\*",
        "title": ui.RESULT_TITLE,
    }


def test_the_bot_pings_nobody_by_default() -> None:
    assert NO_MENTIONS.to_dict() == {"parse": []}
