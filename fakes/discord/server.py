"""A strict fake Discord (REST + gateway) on loopback that the real discord.py 2.7.1 logs into.

Shared by the end-to-end tests, the benchmarks and `python -m bot demo`.

Start it, build a world, run a bot against it, play members::

    async with FakeDiscord(FakeDiscordConfig(ack_window=3.0)) as fake:
        guild = fake.add_guild("Art Club", premium_tier=0)           # 10 MiB uploads
        channel = fake.add_channel(guild, "art", nsfw=False)
        mods = fake.add_role(guild, "Mods", permissions=1 << 5)      # Manage Server
        alice = fake.add_member(guild, "alice", roles=[mods])
        async with run_bot_against(fake, bot):                      # login, READY, close
            interaction = await fake.invoke_slash(channel, alice, "imagine", {"prompt": "a cat"})
            await interaction.wait_acknowledged()                    # -> callback type (5 = defer)
            message = await interaction.wait_original(lambda m: bool(m.attachments))
            click = await fake.click(message, "retry", alice)
            admin = await fake.invoke_slash(channel, alice, "imagine-admin limits set", {...})

`FakeDiscord` API
-----------------
- `FakeDiscord(config=None, host="127.0.0.1", port=0)`; `await start()` / `await stop()` or
  `async with`. `rest_base` (`http://127.0.0.1:PORT/api/v10`), `gateway_url`
  (`ws://127.0.0.1:PORT/gateway`), `base_url`, `bot_token`, `application_id`, `bot_user`.
- `config` (`FakeDiscordConfig`, mutable): `bot_token`, `ack_window` (3 s), `token_lifetime`
  (15 min), `edit_rate_limit`/`edit_rate_window` (5 edits per 5 s per message),
  `advertise_rate_limits` (send X-RateLimit-* on successful edits, so discord.py paces itself;
  turn off to make an over-eager bot hit real 429s), `privileged_intents`, `recommended_shards`,
  `session_start_total`/`session_starts_remaining`/`session_start_reset_after` (GET /gateway/bot's
  `session_start_limit`; each IDENTIFY spends one, `state.identifies` counts them, and one past
  the budget resets the token and closes every session with 4004, counted in `state.token_resets`).
- `clock` (`OffsetClock`): monotonic time used for every record and window;
  `fake.clock.advance(4)` makes a pending interaction too old to acknowledge without sleeping.
- Builders (build before bots connect; GUILD_CREATE is sent at IDENTIFY):
  `add_guild(name, *, premium_tier=0, filesize_limit=None, bot_permissions=...)`,
  `add_channel(guild, name, *, nsfw=False, bot_permissions=None)`,
  `add_role(guild, name, permissions=0)`,
  `add_member(guild, name, *, permissions=None, roles=(), accepts_dms=True)`,
  `dm_channel(member)` (invoke commands there to play the bot's DM, context 1),
  `add_member_dm(user, user)` (a DM between two members, type 1 but context 2),
  `add_group_dm(*users)` (context 2), `add_foreign_channel()` (a server without the bot),
  `add_outsider(channel)` (a member with the app installed to their account).
- Playing members (each sends INTERACTION_CREATE to the connected bot and returns a
  `FakeInteraction`): `invoke_slash(channel, member, "cmd [group] [sub]", options, *,
  attachment_size_limit=None, locale="en-US")`, `click(message, custom_id, member, *,
  values=None)`, `autocomplete(channel, member, "cmd", options, focused="name")`,
  `submit_modal(interaction, {field_custom_id: value})`, `delete_message(message)` (deleted by
  hand: MESSAGE_DELETE reaches the bot). Option values: str/int/float/bool,
  `FakeMember`/`FakeUser`/`FakeChannel`/`FakeRole` (sent with `resolved` data); types come
  from the registered command when the bot synced, else from the Python value.
- `FakeInteraction`: `id`, `type`, `data`, `payload`, `created_at`, `acknowledged_at`,
  `ack_latency`, `response_type` (4 message, 5 deferred, 6 deferred update, 7 update, 8
  autocomplete, 9 modal), `ephemeral`, `original_message()`, `followups()`,
  `autocomplete_choices`, `modal`, `attachment_size_limit`.
- Records: `calls` (`RecordedCall`: method, path, route template, query, json, files with
  bytes, headers without Authorization, `at`, status, response), `calls_to(method, route)`,
  `messages[id]` (`FakeMessage`: content, embeds, attachments with bytes, components, flags,
  `ephemeral`, `loading`, `allowed_mentions`, who it would ping, `edits` history),
  `interactions[id]`, `global_commands`, `guild_commands[guild_id]`, `spec_violations`,
  `rate_limited_count`
  (429s sent) and `rate_limit_exhausted_count` (edits that used a message's last token).
- Waiting (event-driven, never polling): `await fake.wait_for(lambda: value_or_None,
  timeout=5)`, `await fake.wait_for_call(method, route, predicate)`,
  `interaction.wait_acknowledged()`, `interaction.wait_original(predicate)`,
  `fake.wait_for_bot(connections)`; `channel_messages(channel)`.
- `run_bot_against(fake, bot)`: points discord.py at the fake (`configure_endpoints`), logs
  in, connects, waits for READY (shortening discord.py's 2 s `guild_ready_timeout`), yields,
  closes the bot cleanly. Bots with several shards wait 5 s between IDENTIFYs unless their
  `before_identify_hook` is overridden. Several bots (processes) may connect at once; an
  event goes to the newest connection whose shard owns the guild.

Strictness (Discord's status, code and `{"code", "message", "errors"}` body)
---------------------------------------------------------------------------
Every request is first checked against Discord's own OpenAPI spec (`spec_check`, the spec
stored in `spec/`): a body, query or route the spec does not allow, an unknown key, or an
attachment id without its upload answers 400/50035 and is kept in `fake.spec_violations`
(the e2e `stack` fixture asserts it stays empty; `FakeDiscordConfig(check_spec=False)` skips it).
content > 2,000 (400/50035); embed limits (title 256, description 4,096, 25 fields, field
name 256/value 1,024, footer 2,048, author 256, 6,000 total, ≤ 10 embeds, well-formed URLs);
components (≤ 5 rows, ≤ 5 buttons or 1 select per row, custom_id 1–100, unique; Components
V2: ≤ 40, no content/embeds); empty message (50006); a file over the interaction's
`attachment_size_limit` / the guild's limit (413/40005); second acknowledgement (400/40060);
acknowledgement after `ack_window` (404/10062); callback type not allowed for the interaction
type (400/50035); interaction token used after `token_lifetime` (401/50027); followup before
acknowledgement (404/10015); unknown message (404/10008); edits past the per-message rate limit
(429 with X-RateLimit-*, Retry-After, `Via`, body `retry_after`/`global`); bot routes without
`Authorization: Bot <token>` (401); channel messages without View Channel (403/50001) or Send
Messages/Attach Files (403/50013); a DM between members or a group DM, where the bot is not a
recipient (403/50001); DMs to members who refuse them (403/50007); gateway IDENTIFY with a
wrong token (close 4004), past the session-start budget (token reset, every session closed
4004) or with unapproved privileged intents (close 4014).

After a type-5 deferral the first followup edits the "thinking…" message (as Discord does).
Attachments are served back at `{base_url}/attachments/{id}/{filename}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from fakes.clock import OffsetClock
from fakes.discord.gateway import FakeGateway
from fakes.discord.models import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    JSON,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    RecordedCall,
)
from fakes.discord.players import InteractionSender, submitted, walk_components
from fakes.discord.rest import API_PREFIX, FakeRestApi
from fakes.discord.runner import run_bot_against
from fakes.discord.spec_check import SpecViolation
from fakes.discord.state import (
    FakeDiscordConfig,
    FakeDiscordState,
    FakeInteraction,
)
from fakes.lifecycle import Served

__all__ = [
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeDiscordConfig",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "OffsetClock",
    "RecordedCall",
    "SpecViolation",
    "run_bot_against",
]

T = TypeVar("T")


class FakeDiscord(Served):
    """The fake Discord server; see the module docstring for the whole API."""

    def __init__(
        self, config: FakeDiscordConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or FakeDiscordConfig()
        self.clock = OffsetClock()
        self.state = FakeDiscordState(self.config, self.clock)
        self.gateway = FakeGateway(self.state)
        self._rest = FakeRestApi(self.state)
        self._sender = InteractionSender(self.state, self.gateway)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # Extra routes (e.g. the benchmark's `/_control/` API) installed on the app at start.
        self.app_hooks: list[Callable[[web.Application], None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        self._rest.install(app)
        app.router.add_get("/gateway", self.gateway.handle)
        for hook in self.app_hooks:
            hook(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self.base_url = f"http://{self._host}:{port}"
        self.gateway.url = self.gateway_url
        self.state.attachment_base = f"{self.base_url}/attachments"

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None

    @property
    def rest_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    @property
    def bot_token(self) -> str:
        return self.config.bot_token

    @property
    def application_id(self) -> int:
        return self.state.application_id

    @property
    def bot_user(self) -> FakeUser:
        return self.state.bot_user

    # -- records ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        return self.state.calls

    @property
    def messages(self) -> dict[int, FakeMessage]:
        return self.state.messages

    @property
    def interactions(self) -> dict[int, FakeInteraction]:
        return self.state.interactions

    @property
    def global_commands(self) -> list[JSON]:
        return self.state.global_commands

    @property
    def guild_commands(self) -> dict[int, list[JSON]]:
        return self.state.guild_commands

    @property
    def spec_violations(self) -> list[SpecViolation]:
        """Requests that broke Discord's OpenAPI spec (answered 400/50035); see spec_check."""
        return self.state.spec_violations

    @property
    def rate_limited_count(self) -> int:
        return self.state.rate_limited_count

    @property
    def rate_limit_exhausted_count(self) -> int:
        return self.state.rate_limit_exhausted_count

    def calls_to(self, method: str, route: str) -> list[RecordedCall]:
        """Recorded calls with this method and route template, e.g. `/channels/{channel_id}`."""
        return [c for c in self.calls if c.method == method and c.route == route]

    def channel_messages(self, channel: FakeChannel) -> list[FakeMessage]:
        return [m for m in self.messages.values() if m.channel_id == channel.id]

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> T:
        """Wait until `predicate()` is truthy and return it; re-checked on every change."""
        return await self.state.wait_for(predicate, timeout)

    async def wait_for_call(
        self,
        method: str,
        route: str,
        predicate: Callable[[RecordedCall], bool] = lambda _: True,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RecordedCall:
        """Wait for a finished call (status set) matching method, route and predicate."""

        def found() -> RecordedCall | None:
            return next(
                (c for c in self.calls_to(method, route) if c.status is not None and predicate(c)),
                None,
            )

        return await self.wait_for(found, timeout)

    async def wait_for_bot(
        self,
        connections: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until this many gateway connections have identified."""
        await self.wait_for(lambda: len(self.gateway.connections) >= connections, timeout)

    # -- builders --------------------------------------------------------------------------

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        premium_tier: int = 0,
        filesize_limit: int | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
        locale: str = "en-US",
    ) -> FakeGuild:
        state = self.state
        guild_id = state.snowflake.guild_id()
        guild = FakeGuild(
            id=guild_id,
            name=name,
            owner_id=state.owner.id,
            premium_tier=premium_tier,
            filesize_limit_override=filesize_limit,
            bot_permissions=bot_permissions,
            locale=locale,
        )
        guild.roles.append(FakeRole(guild_id, guild_id, "@everyone", EVERYONE_PERMISSIONS))
        bot_role = FakeRole(
            state.snowflake(), guild_id, state.bot_user.name, bot_permissions, 1, managed=True
        )
        guild.roles.append(bot_role)
        guild.members[state.bot_user.id] = FakeMember(state.bot_user, guild_id, [bot_role])
        guild.members[state.owner.id] = FakeMember(state.owner, guild_id)
        state.guilds[guild_id] = guild
        return guild

    def add_channel(
        self,
        guild: FakeGuild,
        name: str = "general",
        *,
        nsfw: bool = False,
        bot_permissions: int | None = None,
    ) -> FakeChannel:
        channel = FakeChannel(
            id=self.state.snowflake(),
            guild_id=guild.id,
            name=name,
            nsfw=nsfw,
            position=len(guild.channels),
            bot_permissions=bot_permissions,
        )
        guild.channels.append(channel)
        self.state.channels[channel.id] = channel
        return channel

    def dm_channel(self, member: FakeMember | FakeUser) -> FakeChannel:
        """The DM channel between the bot and `member` (for interactions in DMs)."""
        return self.state.dm_channel(member.user if isinstance(member, FakeMember) else member)

    def add_role(self, guild: FakeGuild, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(self.state.snowflake(), guild.id, name, permissions, len(guild.roles))
        guild.roles.append(role)
        return role

    def add_member(
        self,
        guild: FakeGuild,
        name: str = "member",
        *,
        permissions: int | None = None,
        roles: Sequence[FakeRole] = (),
        accepts_dms: bool = True,
    ) -> FakeMember:
        """A member; `permissions` overrides what @everyone and `roles` would grant."""
        user = FakeUser(self.state.snowflake(), name, accepts_dms=accepts_dms)
        self.state.users[user.id] = user
        member = FakeMember(user, guild.id, list(roles), permissions)
        guild.members[user.id] = member
        return member

    def add_foreign_channel(self, name: str = "elsewhere") -> FakeChannel:
        """A text channel of a server the bot is not in: the bot never hears of that server and
        cannot reach the channel (it is unknown to the REST API); only a user-installed app's
        interactions come from it."""
        return FakeChannel(
            id=self.state.snowflake(), guild_id=self.state.snowflake.guild_id(), name=name
        )

    def add_group_dm(self, *users: FakeUser, name: str = "") -> FakeChannel:
        """A group DM among `users` (the bot is never a recipient: its posts there are refused,
        403/50001)."""
        channel = FakeChannel(
            id=self.state.snowflake(), guild_id=None, name=name, type=3, recipients=users
        )
        self.state.channels[channel.id] = channel
        return channel

    def add_member_dm(self, first: FakeUser, second: FakeUser) -> FakeChannel:
        """The DM between two members (type 1, like the bot's own DM, but the bot is not a
        recipient: the app reaches it only as a user install, context 2, and the bot's posts
        there are refused, 403/50001)."""
        channel = FakeChannel(
            id=self.state.snowflake(), guild_id=None, name="", type=1, recipients=(first, second)
        )
        self.state.channels[channel.id] = channel
        return channel

    def add_outsider(
        self, channel: FakeChannel, name: str = "outsider", *, accepts_dms: bool = True
    ) -> FakeMember:
        """A member where the bot is not (a foreign server's channel or a group DM), with the
        app installed to their account; the bot can open a DM with them."""
        user = FakeUser(self.state.snowflake(), name, accepts_dms=accepts_dms)
        self.state.users[user.id] = user
        return FakeMember(user, channel.guild_id or 0)

    # -- playing members -------------------------------------------------------------------

    async def invoke_slash(
        self,
        channel: FakeChannel,
        member: FakeMember,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
        user_install: bool = False,
    ) -> FakeInteraction:
        """`member` runs `/command` (space-separated group/subcommand path) with `options`.
        `user_install`: through the app installed to their account (implied in a foreign
        server's channel, a DM between members or a group DM, where Discord offers only
        commands with integration type 1 in the matching context)."""
        via_user = user_install or channel.is_private_channel or (
            channel.guild_id is not None and channel.guild_id not in self.state.guilds)
        if via_user:
            self._check_user_installable(channel, command.split()[0])
        data = self._sender.command_data(channel, command, options or {}, focused=None)
        return await self._sender.send(
            APPLICATION_COMMAND, data, channel, member, attachment_size_limit, locale,
            user_install=via_user,
        )

    def _check_user_installable(self, channel: FakeChannel, name: str) -> None:
        """Discord's client offers a user-installed app's command only where the registered
        command allows it (integration type 1, and the channel's context)."""
        registered = self._sender.registered_command(channel, name)
        if registered is None:
            raise ValueError(f"/{name} is not registered")
        context = 2 if channel.is_private_channel else 1 if channel.guild_id is None else 0
        if 1 not in (registered.get("integration_types") or [0]):
            raise ValueError(f"/{name} cannot be installed to a user's account")
        if context not in (registered.get("contexts") or [0, 1, 2]):
            raise ValueError(f"/{name} is not offered in interaction context {context}")

    async def autocomplete(
        self,
        channel: FakeChannel,
        member: FakeMember,
        command: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """`member` is typing into option `focused`; the bot should answer with type 8."""
        data = self._sender.command_data(channel, command, options, focused=focused)
        return await self._sender.send(AUTOCOMPLETE, data, channel, member, None, locale)

    def upload(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        declared_size: int | None = None,
    ) -> FakeAttachment:
        """A file a member attaches to a slash command: pass it as an option's value; it is
        served at its `url` like any attachment."""
        return FakeAttachment(
            self.state.snowflake(), filename, data, content_type,
            width=width, height=height, declared_size=declared_size,
        )

    async def delete_message(self, message: FakeMessage) -> None:
        """Someone deletes `message` by hand (a moderator, or its author in Discord's client):
        it is gone, and the bot hears of it through MESSAGE_DELETE, as Discord tells bots with
        the (non-privileged) guild and direct message intents."""
        message.deleted_at = self.clock()
        guild_id = self.state.channels[message.channel_id].guild_id
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        await self.gateway.dispatch("MESSAGE_DELETE", data, guild_id)
        await self.state.notify()

    async def click(
        self,
        message: FakeMessage,
        custom_id: str,
        member: FakeMember,
        *,
        values: Sequence[str] | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        """`member` presses the button (or picks `values` in the select) `custom_id`."""
        component = message.find_component(custom_id)
        if component is None:
            raise ValueError(f"message {message.id} has no component {custom_id!r}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; Discord would not send it")
        data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = list(values)
        channel = self.state.channels[message.channel_id]
        return await self._sender.send(
            MESSAGE_COMPONENT,
            data,
            channel,
            member,
            attachment_size_limit,
            "en-US",
            message=message,
        )

    async def submit_modal(
        self, interaction: FakeInteraction, values: Mapping[str, str | Sequence[str]]
    ) -> FakeInteraction:
        """Submit the modal the bot showed for `interaction`: {input custom_id: value}.

        The submission mirrors the modal's layout (action rows or labels), as Discord's does;
        a list value answers a select.
        """
        if interaction.modal is None:
            raise ValueError("the bot did not answer this interaction with a modal")
        inputs = walk_components(interaction.modal["components"])
        unknown = set(values) - {c["custom_id"] for c in inputs if "custom_id" in c}
        if unknown:
            raise ValueError(f"the modal has no inputs {sorted(unknown)}")
        data: JSON = {
            "custom_id": interaction.modal["custom_id"],
            "components": [submitted(c, values) for c in interaction.modal["components"]],
        }
        message = self.messages.get(interaction.target_message_id or 0)
        return await self._sender.send(
            MODAL_SUBMIT,
            data,
            interaction.channel,
            interaction.member,
            interaction.attachment_size_limit,
            "en-US",
            message=message,
        )
