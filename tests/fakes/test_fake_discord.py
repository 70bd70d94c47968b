"""The fake Discord against the real discord.py client: the happy flow and its strictness."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.app.endpoints import configure_endpoints, reset_endpoints
from fakes.discord.limits import DiscordAPIError, check_message
from fakes.discord.server import (
    FakeChannel,
    FakeDiscord,
    FakeDiscordConfig,
    FakeGuild,
    FakeMember,
    run_bot_against,
)
from fakes.discord.spec_check import default_spec_check

pytestmark = pytest.mark.timeout(30)

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10
CALLBACK = "/interactions/{interaction_id}/{token}/callback"
ORIGINAL = "/webhooks/{application_id}/{token}/messages/@original"
FOLLOWUP = "/webhooks/{application_id}/{token}"
Handler = Callable[[discord.Interaction], Awaitable[None]]


class World:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.guild: FakeGuild = fake.add_guild("Art Club")
        self.channel: FakeChannel = fake.add_channel(self.guild, "art")
        self.alice: FakeMember = fake.add_member(self.guild, "alice")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(FakeDiscordConfig(edit_rate_window=0.5)) as server:
        yield server


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    return World(fake)


def make_bot() -> commands.AutoShardedBot:
    intents = discord.Intents.default()
    return commands.AutoShardedBot(command_prefix=commands.when_mentioned, intents=intents)


def bot_with(handler: Handler) -> commands.AutoShardedBot:
    """A bot whose `/probe` command runs `handler` (and records its error, if any)."""
    bot = make_bot()

    @bot.tree.command(name="probe", description="Runs the test's handler")
    async def probe(interaction: discord.Interaction) -> None:
        await handler(interaction)

    return bot


def errors_of(future: asyncio.Future[BaseException]) -> Callable[[BaseException], None]:
    def record(error: BaseException) -> None:
        if not future.done():
            future.set_result(error)

    return record


class ImagineLikeCog(commands.Cog):
    """The shape of the real /imagine: defer, then an embed, a file and a button."""

    def __init__(self) -> None:
        self.clicked_by: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @app_commands.command(name="ping", description="Answers with an image")
    @app_commands.describe(prompt="What to draw")
    async def ping(self, interaction: discord.Interaction, prompt: str, count: int = 1) -> None:
        await interaction.response.defer(thinking=True)
        embed = discord.Embed(title="Pong", description=f"{prompt} x{count}")
        embed.set_image(url="attachment://pong.png")
        view = discord.ui.View(timeout=None)
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label="Again", custom_id="ping:again"
        )
        button.callback = self.again  # type: ignore[method-assign]
        view.add_item(button)
        await interaction.edit_original_response(
            embed=embed,
            attachments=[discord.File(io.BytesIO(PNG_BYTES), filename="pong.png")],
            view=view,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def again(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Again!", ephemeral=True)
        self.clicked_by.set_result(interaction.user.id)


async def test_slash_command_defer_edit_with_file_and_button_click(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    cog = ImagineLikeCog()
    await bot.add_cog(cog)
    async with run_bot_against(fake, bot):
        assert bot.get_guild(world.guild.id) is not None
        assert bot.get_channel(world.channel.id) is not None
        await bot.tree.sync()

        interaction = await fake.invoke_slash(
            world.channel, world.alice, "ping", {"prompt": "a cat", "count": 2}
        )
        assert await interaction.wait_acknowledged() == 5  # deferred "thinking", in the window
        message = await interaction.wait_original(lambda m: not m.loading)
        assert message.embeds[0]["title"] == "Pong"
        assert message.embeds[0]["description"] == "a cat x2"
        assert message.embeds[0]["image"]["url"] == "attachment://pong.png"
        assert message.attachment("pong.png").data == PNG_BYTES
        assert message.custom_ids() == ["ping:again"]
        assert message.allowed_mentions == {"parse": []}
        assert not message.ephemeral and len(message.edits) == 1

        click = await fake.click(message, "ping:again", world.alice)
        assert await cog.clicked_by == world.alice.id
        assert await click.wait_acknowledged() == 4
        reply = click.original_message()
        assert reply is not None and reply.content == "Again!" and reply.ephemeral

    routes = [(c.method, c.route) for c in fake.calls]
    assert routes[:3] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("GET", "/gateway/bot"),
    ]
    assert ("PUT", "/applications/{application_id}/commands") in routes
    assert [c["name"] for c in fake.global_commands] == ["ping"]
    defer, click_reply = fake.calls_to("POST", CALLBACK)
    assert defer.json == {"type": 5} and defer.query == {"with_response": "1"}
    assert click_reply.json["data"]["flags"] == 64
    (edit,) = fake.calls_to("PATCH", ORIGINAL)
    assert edit.filenames == ["pong.png"] and edit.files[0].data == PNG_BYTES
    assert edit.json["attachments"] == [{"id": 0, "filename": "pong.png"}]
    assert "Authorization" not in edit.headers and "authorization" not in edit.headers
    assert all(c.status is not None and c.status < 400 for c in fake.calls)
    assert fake.rate_limited_count == 0


async def test_plain_client_connects_to_the_configured_gateway(world: World) -> None:
    fake = world.fake
    client = discord.Client(intents=discord.Intents.default())
    tree = app_commands.CommandTree(client)
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @tree.command(name="echo", description="Echoes")
    async def echo(interaction: discord.Interaction, text: str) -> None:
        seen.set_result(text)
        await interaction.response.send_message(
            text, allowed_mentions=discord.AllowedMentions.none()
        )

    async with run_bot_against(fake, client):
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
        interaction = await fake.invoke_slash(
            world.channel, world.alice, "echo", {"text": f"@everyone {world.alice.mention}"}
        )
        assert await seen == f"@everyone {world.alice.mention}"
        message = await interaction.wait_original()
    assert not fake.calls_to("GET", "/gateway/bot")
    assert message.type == 20 and message.content.startswith("@everyone")
    assert not message.mention_everyone and not message.mentioned_user_ids


async def test_subcommand_groups_and_autocomplete(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    got: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    admin = app_commands.Group(name="imagine-admin", description="Admin")
    limits = app_commands.Group(name="limits", description="Limits", parent=admin)

    @limits.command(name="set", description="Set a limit")
    async def set_limit(interaction: discord.Interaction, name: str, value: int) -> None:
        got.set_result((name, value))
        await interaction.response.send_message("ok", ephemeral=True)

    @set_limit.autocomplete("name")
    async def names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in ("daily", "hourly") if current in n]

    bot.tree.add_command(admin, guild=discord.Object(world.guild.id))
    async with run_bot_against(fake, bot):
        await bot.tree.sync(guild=discord.Object(world.guild.id))
        typing = await fake.autocomplete(
            world.channel, world.alice, "imagine-admin limits set", {"name": "ly"}, focused="name"
        )
        assert await typing.wait_acknowledged() == 8
        assert typing.autocomplete_choices == [
            {"name": "daily", "value": "daily"},
            {"name": "hourly", "value": "hourly"},
        ]
        run = await fake.invoke_slash(
            world.channel, world.alice, "imagine-admin limits set", {"name": "daily", "value": 3}
        )
        assert await got == ("daily", 3)
        assert (await run.wait_original()).ephemeral
    assert run.data["guild_id"] == str(world.guild.id)
    assert run.data["id"] == fake.guild_commands[world.guild.id][0]["id"]
    with pytest.raises(ValueError):
        await fake.invoke_slash(world.channel, world.alice, "imagine-admin limits set", {"nope": 1})


async def test_first_followup_after_deferral_edits_the_thinking_message(world: World) -> None:
    done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        first = await interaction.followup.send("first", wait=True)
        second = await interaction.followup.send("second", wait=True)
        done.set_result((first.id, second.id))

    async with run_bot_against(world.fake, bot_with(handler)):
        interaction = await world.fake.invoke_slash(world.channel, world.alice, "probe")
        first_id, second_id = await done
    assert first_id == interaction.original_message_id
    assert world.fake.messages[first_id].content == "first"
    assert interaction.followup_message_ids == [second_id]


async def test_second_acknowledgement_is_rejected(world: World) -> None:
    async with run_bot_against(world.fake, bot_with(lambda i: i.response.defer())):
        interaction = await world.fake.invoke_slash(world.channel, world.alice, "probe")
        await interaction.wait_acknowledged()
        url = f"{world.fake.rest_base}/interactions/{interaction.id}/{interaction.token}/callback"
        async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as resp:
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["code"] == 40060


async def test_late_acknowledgement_is_unknown_interaction(world: World) -> None:
    gate = asyncio.Event()
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def slow(interaction: discord.Interaction) -> None:
        await gate.wait()
        try:
            await interaction.response.defer()
        except discord.HTTPException as error:
            outcome.set_result(error)

    async with run_bot_against(world.fake, bot_with(slow)):
        interaction = await world.fake.invoke_slash(world.channel, world.alice, "probe")
        world.fake.clock.advance(3.01)
        gate.set()
        error = await outcome
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert not interaction.acknowledged


async def test_overlong_content_and_big_files_are_rejected(world: World) -> None:
    outcome: asyncio.Future[list[discord.HTTPException]] = (
        asyncio.get_running_loop().create_future()
    )

    async def handler(interaction: discord.Interaction) -> None:
        errors = []
        try:
            await interaction.response.send_message("x" * 2001)
        except discord.HTTPException as error:
            errors.append(error)
        await interaction.response.defer()
        try:
            await interaction.edit_original_response(
                attachments=[discord.File(io.BytesIO(b"y" * 101), filename="big.png")]
            )
        except discord.HTTPException as error:
            errors.append(error)
        outcome.set_result(errors)

    async with run_bot_against(world.fake, bot_with(handler)):
        await world.fake.invoke_slash(
            world.channel, world.alice, "probe", attachment_size_limit=100
        )
        too_long, too_big = await outcome
    assert too_long.status == 400 and too_long.code == 50035
    assert "data.content" in too_long.text and "2000" in too_long.text
    assert too_big.status == 413 and too_big.code == 40005


async def test_interaction_token_expires(world: World) -> None:
    world.fake.config.token_lifetime = 60.0
    gate = asyncio.Event()
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await gate.wait()
        try:
            await interaction.edit_original_response(content="too late")
        except discord.HTTPException as error:
            outcome.set_result(error)

    async with run_bot_against(world.fake, bot_with(handler)):
        interaction = await world.fake.invoke_slash(world.channel, world.alice, "probe")
        await interaction.wait_acknowledged()
        world.fake.clock.advance(61)
        gate.set()
        error = await outcome
    assert error.status == 401 and error.code == 50027
    original = interaction.original_message()
    assert original is not None and original.loading


def deferring_then_editing(edits: int, done: asyncio.Future[None]) -> Handler:
    """A handler that defers, then edits its reply `edits` times ("step 0", ...) as fast as it
    may, and resolves `done`."""

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        for step in range(edits):
            await interaction.edit_original_response(content=f"step {step}")
        done.set_result(None)

    return handler


async def test_edit_rate_limit_429_is_retried_by_discord_py(world: World) -> None:
    fake = world.fake
    fake.config.edit_rate_limit, fake.config.edit_rate_window = 2, 0.3
    fake.config.advertise_rate_limits = False  # the bot cannot pace itself: it will hit 429s
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    async with run_bot_against(fake, bot_with(deferring_then_editing(4, done))):
        interaction = await fake.invoke_slash(world.channel, world.alice, "probe")
        await done
    message = interaction.original_message()
    assert message is not None and message.content == "step 3" and len(message.edits) == 4
    assert fake.rate_limited_count >= 1
    limited = [c for c in fake.calls_to("PATCH", ORIGINAL) if c.status == 429]
    assert len(limited) == fake.rate_limited_count
    assert limited[0].response["global"] is False and limited[0].response["retry_after"] > 0


async def test_advertised_rate_limits_let_discord_py_pace_itself(world: World) -> None:
    fake = world.fake
    fake.config.edit_rate_limit, fake.config.edit_rate_window = 2, 0.3
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    async with run_bot_against(fake, bot_with(deferring_then_editing(3, done))):
        await fake.invoke_slash(world.channel, world.alice, "probe")
        await done
    assert fake.rate_limited_count == 0
    assert fake.rate_limit_exhausted_count >= 1


async def test_channel_messages_need_the_bot_token_and_permissions(world: World) -> None:
    fake = world.fake
    muted = fake.add_channel(world.guild, "read-only", bot_permissions=1 << 10)  # view only
    url = f"{fake.rest_base}/channels/{world.channel.id}/messages"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"content": "hi"}) as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bot {fake.bot_token}"}
        async with session.post(url, json={"content": "hi"}, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            message_id = int((await resp.json())["id"])
        muted_url = f"{fake.rest_base}/channels/{muted.id}/messages"
        async with session.post(muted_url, json={"content": "hi"}, headers=headers) as resp:
            assert (resp.status, (await resp.json())["code"]) == (403, 50013)
        async with session.get(f"{url}/123", headers=headers) as resp:
            assert (resp.status, (await resp.json())["code"]) == (404, 10008)
    assert fake.messages[message_id].content == "hi"


async def test_bot_sees_its_channel_permissions(world: World) -> None:
    fake = world.fake
    no_files = fake.add_channel(world.guild, "no-files", bot_permissions=(1 << 10) | (1 << 11))
    async with run_bot_against(fake, make_bot()) as bot:
        guild = bot.get_guild(world.guild.id)
        assert guild is not None and guild.filesize_limit == 10 * 1024 * 1024
        channel = guild.get_channel(no_files.id)
        assert isinstance(channel, discord.TextChannel)
        permissions = channel.permissions_for(guild.me)
        assert permissions.send_messages and not permissions.attach_files
        with pytest.raises(discord.Forbidden):
            await channel.send(file=discord.File(io.BytesIO(b"x"), filename="x.png"))


class QuickIdentifyBot(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s between shard IDENTIFYs by default; the fake needs no pause."""


async def test_sharded_bot_gets_each_guild_on_its_shard(fake: FakeDiscord) -> None:
    guilds = [fake.add_guild(f"g{i}") for i in range(4)]
    bot = QuickIdentifyBot(
        command_prefix=commands.when_mentioned, intents=discord.Intents.default(), shard_count=2
    )
    async with run_bot_against(fake, bot):
        assert {g.id for g in bot.guilds} == {g.id for g in guilds}
        assert sorted(c.shard for c in fake.gateway.connections) == [(0, 2), (1, 2)]
        assert {bot.get_guild(g.id).shard_id for g in guilds} == {0, 1}  # type: ignore[union-attr]
        for guild in guilds:
            assert bot.get_guild(guild.id).shard_id == (guild.id >> 22) % 2  # type: ignore[union-attr]


async def test_wrong_token_cannot_log_in(fake: FakeDiscord) -> None:
    configure_endpoints(fake.rest_base, fake.gateway_url)
    bot = make_bot()
    async with bot:
        with pytest.raises(discord.LoginFailure):
            await bot.login("not-the-token")


def test_configure_endpoints_is_repeatable() -> None:
    configure_endpoints("http://127.0.0.1:1/api/v10/", "ws://127.0.0.1:1/gateway")
    configure_endpoints("http://127.0.0.1:2/api/v10", None)
    assert Route.BASE == "http://127.0.0.1:2/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    reset_endpoints()
    assert Route.BASE == "https://discord.com/api/v10"


def _row(*custom_ids: str) -> dict[str, Any]:
    buttons = [{"type": 2, "style": 1, "custom_id": custom_id} for custom_id in custom_ids]
    return {"type": 1, "components": buttons}


@pytest.mark.parametrize(
    ("payload", "error_path"),
    [
        ({"embeds": [{"title": "t" * 257}]}, ["embeds", "0", "title"]),
        ({"embeds": [{"description": "d" * 4097}]}, ["embeds", "0", "description"]),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, ["embeds", "0", "fields"]),
        (
            {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
            ["embeds", "0", "fields", "0", "value"],
        ),
        ({"embeds": [{"footer": {"text": "f" * 2049}}]}, ["embeds", "0", "footer", "text"]),
        ({"embeds": [{"author": {"name": "a" * 257}}]}, ["embeds", "0", "author", "name"]),
        ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, ["embeds"]),
        ({"embeds": [{"title": "t"}] * 11}, ["embeds"]),
        ({"embeds": [{"image": {"url": "pong.png"}}]}, ["embeds", "0", "image", "url"]),
        ({"components": [_row("c" * 101)]}, ["components", "0", "components", "0", "custom_id"]),
        ({"components": [_row(str(i)) for i in range(6)]}, ["components"]),
        ({"components": [_row(*(str(i) for i in range(6)))]}, ["components", "0", "components"]),
        (
            {"components": [_row("same", "same")]},
            ["components", "0", "components", "1", "custom_id"],
        ),
    ],
)
def test_message_limits(payload: dict[str, Any], error_path: list[str]) -> None:
    with pytest.raises(DiscordAPIError) as caught:
        check_message(payload, [])
    error = caught.value
    assert (error.status, error.code) == (400, 50035)
    node = error.body()["errors"]
    for key in error_path:
        node = node[key]
    assert node["_errors"]


def test_message_within_limits_passes() -> None:
    fields = [{"name": "n", "value": "v"}] * 25
    embed = {"title": "t" * 256, "description": "d" * 4096, "fields": fields}
    rows = [_row(*(f"{r}-{i}" for i in range(5))) for r in range(5)]
    check_message({"content": "x" * 2000, "embeds": [embed], "components": rows}, [])


async def test_late_delivery_by_channel_message_and_dm(world: World) -> None:
    fake = world.fake
    shy = fake.add_member(world.guild, "shy", accepts_dms=False)
    async with run_bot_against(fake, make_bot()) as bot:
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        alice = discord.Object(world.alice.id)
        sent = await channel.send(
            f"{world.alice.mention} your image @everyone",
            file=discord.File(io.BytesIO(PNG_BYTES), filename="late.png"),
            allowed_mentions=discord.AllowedMentions(everyone=False, users=[alice], roles=False),
        )
        user = await bot.fetch_user(world.alice.id)
        dm = await user.send("here it is")
        with pytest.raises(discord.Forbidden) as refused:
            await (await bot.fetch_user(shy.id)).send("hello?")
    late = fake.messages[sent.id]
    assert late.attachment("late.png").data == PNG_BYTES and late.source == "channel"
    assert late.mentioned_user_ids == {world.alice.id} and not late.mention_everyone
    assert fake.messages[dm.id].content == "here it is"
    assert refused.value.code == 50007


async def test_two_bot_processes_split_the_shards(fake: FakeDiscord) -> None:
    guilds = [fake.add_guild(f"g{i}") for i in range(6)]
    channels = {g.id: fake.add_channel(g, "art") for g in guilds}
    members = {g.id: fake.add_member(g, "alice") for g in guilds}
    handled_by: dict[int, int] = {}

    def process(shard_id: int) -> commands.AutoShardedBot:
        bot = QuickIdentifyBot(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            shard_count=2,
            shard_ids=[shard_id],
        )

        @bot.tree.command(name="where", description="Which process answers")
        async def where(interaction: discord.Interaction) -> None:
            handled_by[interaction.guild_id or 0] = shard_id
            await interaction.response.send_message(str(shard_id))

        return bot

    async with run_bot_against(fake, process(0)), run_bot_against(fake, process(1)):
        for guild in guilds:
            interaction = await fake.invoke_slash(channels[guild.id], members[guild.id], "where")
            await interaction.wait_original()
    assert handled_by == {g.id: (g.id >> 22) % 2 for g in guilds}
    assert set(handled_by.values()) == {0, 1}


class PromptModal(discord.ui.Modal, title="Edit prompt"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt"
    )

    def __init__(self, submitted: asyncio.Future[str]) -> None:
        super().__init__(custom_id="edit-prompt")
        self.submitted = submitted

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("saved", ephemeral=True)
        self.submitted.set_result(self.prompt.value)


async def test_modal_round_trip(world: World) -> None:
    submitted: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(PromptModal(submitted))

    async with run_bot_against(world.fake, bot_with(handler)):
        interaction = await world.fake.invoke_slash(world.channel, world.alice, "probe")
        assert await interaction.wait_acknowledged() == 9
        assert interaction.modal is not None and interaction.modal["title"] == "Edit prompt"
        submit = await world.fake.submit_modal(interaction, {"prompt": "a dog"})
        assert await submitted == "a dog"
        assert await submit.wait_acknowledged() == 4


async def test_slash_command_in_a_dm(world: World) -> None:
    seen: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        seen.set_result((interaction.guild is None, interaction.user.id))
        await interaction.response.send_message("hi in private")

    async with run_bot_against(world.fake, bot_with(handler)):
        dm = world.fake.dm_channel(world.alice)
        interaction = await world.fake.invoke_slash(dm, world.alice, "probe")
        assert await seen == (True, world.alice.id)
        assert (await interaction.wait_original()).channel_id == dm.id


async def test_options_must_match_the_registered_types(world: World) -> None:
    bot = make_bot()
    cog = ImagineLikeCog()
    await bot.add_cog(cog)
    async with run_bot_against(world.fake, bot):
        await bot.tree.sync()
        with pytest.raises(TypeError):
            await world.fake.invoke_slash(world.channel, world.alice, "ping", {"prompt": 3})
        await bot.close()
        with pytest.raises(RuntimeError):  # nothing listens for this guild's shard any more
            await world.fake.invoke_slash(world.channel, world.alice, "ping", {"prompt": "x"})
    assert not world.fake.interactions


async def test_dms_the_bot_is_not_part_of_refuse_its_posts(world: World) -> None:
    fake = world.fake
    bob = fake.add_member(world.guild, "bob")
    member_dm = fake.add_member_dm(world.alice.user, bob.user)
    group = fake.add_group_dm(world.alice.user, bob.user)
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    async with aiohttp.ClientSession() as session:
        for channel in (member_dm, group):
            url = f"{fake.rest_base}/channels/{channel.id}"
            async with session.post(f"{url}/messages", json={"content": "hi"},
                                    headers=headers) as resp:
                assert (resp.status, (await resp.json())["code"]) == (403, 50001)
            async with session.get(url, headers=headers) as resp:
                assert (resp.status, (await resp.json())["code"]) == (403, 50001)
        own = fake.dm_channel(world.alice)  # the bot's own DM takes its posts
        async with session.post(f"{fake.rest_base}/channels/{own.id}/messages",
                                json={"content": "hi"}, headers=headers) as resp:
            assert resp.status == 200


def test_dm_channels_are_shaped_as_the_spec_says(world: World) -> None:
    fake = world.fake
    bob = fake.add_member(world.guild, "bob")
    spec = default_spec_check()
    member_dm = fake.add_member_dm(world.alice.user, bob.user).payload()
    assert spec.schema_problems("PrivateChannelResponse", member_dm) == []
    assert [r["id"] for r in member_dm["recipients"]] == [str(world.alice.id), str(bob.id)]
    own = fake.dm_channel(world.alice).payload()
    assert spec.schema_problems("PrivateChannelResponse", own) == []
    group = fake.add_group_dm(world.alice.user, bob.user).payload()
    assert spec.schema_problems("PrivateGroupChannelResponse", group) == []


@pytest.mark.parametrize(
    ("where", "context", "owners"),
    [
        ("server", 0, lambda w, bob: {"0": str(w.guild.id)}),
        ("bot-dm", 1, lambda w, bob: {"0": "0"}),
        ("member-dm", 2, lambda w, bob: {"1": str(w.alice.id)}),
        ("group-dm", 2, lambda w, bob: {"1": str(w.alice.id)}),
        ("foreign-server", 0, lambda w, bob: {"1": str(w.alice.id)}),
    ],
)
async def test_interactions_carry_discords_context_and_owners(
    world: World, where: str, context: int, owners: Callable[[World, FakeMember], Any]
) -> None:
    fake = world.fake
    bob = fake.add_member(world.guild, "bob")
    channel = {
        "server": lambda: world.channel,
        "bot-dm": lambda: fake.dm_channel(world.alice),
        "member-dm": lambda: fake.add_member_dm(world.alice.user, bob.user),
        "group-dm": lambda: fake.add_group_dm(world.alice.user, bob.user),
        "foreign-server": fake.add_foreign_channel,
    }[where]()
    seen: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    async def handler(interaction: discord.Interaction) -> None:
        seen.set_result((interaction.context, interaction.is_user_integration(),
                         type(interaction.channel)))
        await interaction.response.send_message("hi")

    bot = bot_with(handler)
    bot.tree.allowed_installs = app_commands.AppInstallationType(guild=True, user=True)
    bot.tree.allowed_contexts = app_commands.AppCommandContext(
        guild=True, dm_channel=True, private_channel=True)
    async with run_bot_against(fake, bot):
        await bot.tree.sync()
        interaction = await fake.invoke_slash(channel, world.alice, "probe")
        parsed, user_install, channel_class = await seen
    assert interaction.payload["context"] == context
    assert interaction.payload["authorizing_integration_owners"] == owners(world, bob)
    assert parsed.to_array() == [context]  # as discord.py reads it back
    assert user_install is ("1" in owners(world, bob))
    if where == "member-dm":
        assert channel_class is discord.DMChannel  # the class cannot tell the two DMs apart
