"""The fake Discord's check of requests against Discord's own OpenAPI spec (spec_check)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from fakes.discord.models import UploadedFile
from fakes.discord.server import FakeDiscord
from fakes.discord.spec_check import (
    SPEC_FILE,
    TOLERATED_DISCORD_PY_QUIRKS,
    SpecCheck,
    SpecViolation,
    default_spec_check,
)

CALLBACK = "/interactions/111/token/callback"
ORIGINAL = "/webhooks/222/token/messages/@original"
FOLLOWUP = "/webhooks/222/token"
COMMANDS = "/applications/222/commands"
PNG = UploadedFile("files[0]", "image.png", "image/png", b"\x89PNG")


@pytest.fixture(scope="module")
def spec() -> SpecCheck:
    return default_spec_check()


def where(violations: list[SpecViolation]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(v.location, v.code) for v in violations]


def button(custom_id: str) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": "Go", "custom_id": custom_id}


def test_the_stored_spec_is_discords_v10_openapi_with_its_licence() -> None:
    document = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1") and document["info"]["version"] == "10"
    assert "MIT License" in (SPEC_FILE.parent / "LICENSE").read_text(encoding="utf-8")
    source = (SPEC_FILE.parent / "SOURCE.md").read_text(encoding="utf-8")
    assert "discord/discord-api-spec" in source and "74fda0fad044" in source


def test_a_deferral_passes(spec: SpecCheck) -> None:
    assert spec.check("POST", CALLBACK, {"with_response": "1"}, {"type": 5}) == []


def test_an_unknown_key_is_reported_where_it_is(spec: SpecCheck) -> None:
    body = {"type": 4, "data": {"content": "hi", "ephemral": True}}
    violations = spec.check("POST", CALLBACK, {}, body)
    assert where(violations) == [(("body", "data", "ephemral"), "UNKNOWN_FIELD")]
    assert "callback: body.data.ephemral" in str(violations[0])


def test_an_unknown_key_deep_in_a_component_is_reported(spec: SpecCheck) -> None:
    row = {"type": 1, "components": [button("a") | {"colour": "red"}]}
    violations = spec.check("PATCH", ORIGINAL, {}, {"components": [row]})
    assert where(violations) == [
        (("body", "components", 0, "components", 0, "colour"), "UNKNOWN_FIELD")
    ]


def test_too_long_content_is_reported_as_discord_words_it(spec: SpecCheck) -> None:
    body = {"type": 4, "data": {"content": "x" * 2001}}
    (violation,) = spec.check("POST", CALLBACK, {}, body)
    assert violation.location == ("body", "data", "content")
    assert (violation.code, violation.message) == (
        "BASE_TYPE_MAX_LENGTH",
        "Must be 2000 or fewer in length.",
    )


def test_seven_thousand_characters_across_embeds_are_reported(spec: SpecCheck) -> None:
    embeds = [
        {"title": "t" * 200, "description": "d" * 4000},
        {"description": "d" * 2000, "fields": [{"name": "n" * 100, "value": "v" * 700}]},
    ]
    violations = spec.check("PATCH", ORIGINAL, {}, {"embeds": embeds})
    assert where(violations) == [(("body", "embeds"), "MAX_EMBED_SIZE_EXCEEDED")]


def test_forty_one_components_counting_nested_ones_are_reported(spec: SpecCheck) -> None:
    # Components V2: 1 container holding 40 text displays = 41 components, 1 at the top level.
    texts = [{"type": 10, "content": f"line {n}"} for n in range(40)]
    body = {"flags": 1 << 15, "components": [{"type": 17, "components": texts}]}
    violations = spec.check("PATCH", ORIGINAL, {}, body)
    assert where(violations) == [(("body", "components"), "BASE_TYPE_MAX_LENGTH")]
    texts.pop()
    assert spec.check("PATCH", ORIGINAL, {}, body) == []


def test_components_v2_forbids_content_and_embeds(spec: SpecCheck) -> None:
    body = {"flags": 1 << 15, "content": "hi", "components": [{"type": 10, "content": "x"}]}
    violations = spec.check("PATCH", ORIGINAL, {}, body)
    assert where(violations) == [
        (("body", "content"), "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2")
    ]


def test_an_attachment_id_without_its_upload_is_reported(spec: SpecCheck) -> None:
    payload = {"attachments": [{"id": 0, "filename": "image.png"}, {"id": 1, "filename": "b"}]}
    violations = spec.check("PATCH", ORIGINAL, {}, payload, [PNG])
    assert where(violations) == [(("body", "attachments", 1, "id"), "ATTACHMENT_NOT_FOUND")]


def test_an_attachment_may_name_one_the_message_already_has(spec: SpecCheck) -> None:
    payload = {"attachments": [{"id": "1234567890", "filename": "kept.png"}]}
    assert spec.check("PATCH", ORIGINAL, {}, payload, (), lambda: {1234567890}) == []


def test_a_file_part_not_named_files_n_is_reported(spec: SpecCheck) -> None:
    upload = UploadedFile("file", "image.png", "image/png", b"x")
    violations = spec.check("POST", FOLLOWUP, {}, {"content": "hi"}, [upload])
    assert where(violations) == [(("files",), "UNKNOWN_FILE_PART")]


def test_wrong_types_and_missing_fields_are_reported(spec: SpecCheck) -> None:
    violations = spec.check("POST", CALLBACK, {}, {"data": {"content": 5}})
    assert ("body", "type") in [v.location for v in violations]
    modal = {"type": 9, "data": {"custom_id": "m", "title": "T" * 46, "components": []}}
    assert (("body", "data", "title"), "BASE_TYPE_MAX_LENGTH") in where(
        spec.check("POST", CALLBACK, {}, modal)
    )


def test_query_parameters_are_checked(spec: SpecCheck) -> None:
    assert where(spec.check("POST", FOLLOWUP, {"wait": "maybe"}, {"content": "x"})) == [
        (("query", "wait"), "BOOLEAN_TYPE_COERCE")
    ]
    assert where(spec.check("POST", FOLLOWUP, {"waits": "true"}, {"content": "x"})) == [
        (("query", "waits"), "UNKNOWN_QUERY_PARAMETER")
    ]


def test_routes_and_methods_the_spec_lacks_are_reported_not_skipped(spec: SpecCheck) -> None:
    assert where(spec.check("GET", "/imaginary/route", {}, None)) == [(("route",), "UNKNOWN_ROUTE")]
    assert where(spec.check("PUT", "/gateway/bot", {}, None)) == [(("route",), "UNKNOWN_METHOD")]
    assert where(spec.check("GET", "/users/@me", {}, {"x": 1})) == [(("body",), "UNEXPECTED_BODY")]


def test_webhook_paths_map_onto_the_specs_templates(spec: SpecCheck) -> None:
    (violation,) = spec.check("PATCH", ORIGINAL, {}, {"contents": "x"})
    assert violation.template == "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
    (violation,) = spec.check("PATCH", "/webhooks/1/t/messages/99", {}, {"contents": "x"})
    assert violation.template == "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"


# -- what discord.py 2.7.1 always sends: each tolerated quirk passes -------------------------


def test_the_tolerance_list_is_short_and_commented() -> None:
    assert len(TOLERATED_DISCORD_PY_QUIRKS) == 7


def test_integer_attachment_ids_pass(spec: SpecCheck) -> None:
    payload = {"attachments": [{"id": 0, "filename": "image.png"}]}
    assert spec.check("PATCH", ORIGINAL, {}, payload, [PNG]) == []


def test_integer_allowed_mention_user_ids_pass(spec: SpecCheck) -> None:
    mentions = {"parse": [], "users": [1234567890123]}
    assert spec.check("POST", FOLLOWUP, {}, {"content": "hi", "allowed_mentions": mentions}) == []
    mentions["roles"] = [1234567890123]  # discord.py sends these as ints too; the bot never does
    assert where(spec.check("POST", FOLLOWUP, {}, {"content": "hi", "allowed_mentions": mentions}))


def test_embed_flags_zero_passes_and_other_flags_do_not(spec: SpecCheck) -> None:
    embed = {"type": "rich", "title": "t", "flags": 0}
    assert spec.check("PATCH", ORIGINAL, {}, {"embeds": [embed]}) == []
    embed["flags"] = 4
    assert where(spec.check("PATCH", ORIGINAL, {}, {"embeds": [embed]})) == [
        (("body", "embeds", 0, "flags"), "UNKNOWN_FIELD")
    ]


def test_tts_false_on_an_edit_passes_and_true_does_not(spec: SpecCheck) -> None:
    assert spec.check("PATCH", ORIGINAL, {}, {"content": "x", "tts": False}) == []
    assert where(spec.check("PATCH", ORIGINAL, {}, {"content": "x", "tts": True})) == [
        (("body", "tts"), "UNKNOWN_FIELD")
    ]


def test_nsfw_on_commands_passes(spec: SpecCheck) -> None:
    command = {
        "name": "imagine",
        "description": "Draw",
        "type": 1,
        "nsfw": False,
        "dm_permission": True,
        "default_member_permissions": None,
        "contexts": [0, 1, 2],
        "integration_types": [0, 1],
        "options": [{"type": 3, "name": "prompt", "description": "What", "required": True}],
    }
    assert spec.check("PUT", COMMANDS, {}, [command]) == []
    assert spec.check("POST", COMMANDS, {}, command) == []


def test_integer_dm_recipient_passes(spec: SpecCheck) -> None:
    assert spec.check("POST", "/users/@me/channels", {}, {"recipient_id": 1234567890}) == []


def test_boolean_query_flags_as_one_and_zero_pass(spec: SpecCheck) -> None:
    assert spec.check("POST", CALLBACK, {"with_response": "1"}, {"type": 5}) == []
    query = {"wait": "0", "with_components": "1"}
    assert spec.check("POST", FOLLOWUP, query, {"content": "x"}) == []


async def test_the_fake_answers_a_violation_as_discord_would_and_records_it() -> None:
    async with FakeDiscord() as fake:
        channel = fake.add_channel(fake.add_guild(), "art")
        url = f"{fake.rest_base}/channels/{channel.id}/messages"
        headers = {"Authorization": f"Bot {fake.bot_token}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"content": "hi", "embed": {}}, headers=headers) as r:
                assert (r.status, r.headers["Content-Type"]) == (400, "application/json")
                body = await r.json()
            async with session.post(url, json={"content": "hi"}, headers=headers) as r:
                assert r.status == 200
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body")
    assert body["errors"]["embed"]["_errors"][0]["code"] == "UNKNOWN_FIELD"
    assert where(fake.spec_violations) == [(("body", "embed"), "UNKNOWN_FIELD")]
    assert not fake.channel_messages(channel)[1:]  # only the valid message was created
