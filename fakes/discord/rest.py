"""The fake Discord REST API (the routes discord.py 2.7.1 uses in a bot's flow).

Every request under the API prefix is recorded (`state.calls`) before it is handled; errors
answer with Discord's JSON shape and every JSON answer's Content-Type is exactly
`application/json` (discord.py treats anything else as text).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from fakes.discord.limits import (
    DiscordAPIError,
    cannot_dm_user,
    check_autocomplete,
    check_files,
    check_message,
    invalid_form,
    missing_access,
    missing_permissions,
    not_found,
    unauthorized,
    unknown_channel,
    unknown_message,
    unknown_webhook,
)
from fakes.discord.models import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFAULT_FILESIZE_LIMIT,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    JSON,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    FakeChannel,
    FakeMessage,
    RecordedCall,
    UploadedFile,
)
from fakes.discord.state import (
    FakeDiscordState,
    FakeInteraction,
    RateLimitInfo,
    interaction_message_type,
)

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
_VIEW_CHANNEL, _SEND_MESSAGES, _ATTACH_FILES = 1 << 10, 1 << 11, 1 << 15
_ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
    },
}
_FOLLOWUP_FLAGS = FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    response["json"] = data
    return response


def route_template(request: web.Request) -> str:
    """The matched route's template without the API prefix (the raw path if none matched)."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return template.removeprefix(API_PREFIX)


def no_content() -> web.Response:
    return web.Response(status=204)


class RequestBody:
    """A request's JSON (from a JSON body or multipart `payload_json`) and its files."""

    def __init__(self, json_body: Any = None, files: list[UploadedFile] | None = None) -> None:
        self.json = json_body
        self.files = files or []

    @property
    def payload(self) -> JSON:
        return self.json if isinstance(self.json, dict) else {}


async def read_body(request: web.Request) -> RequestBody:
    if request.content_type.startswith("multipart/"):
        body = RequestBody()
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):  # nested multipart: Discord never sends it
                continue
            data = await part.read()
            if part.name == "payload_json":
                body.json = json.loads(data)
            elif part.filename is not None:
                content_type = part.headers.get("Content-Type")
                body.files.append(
                    UploadedFile(part.name or "", part.filename, content_type, bytes(data))
                )
        return body
    raw = await request.read()
    if raw and request.content_type == "application/json":
        return RequestBody(json.loads(raw))
    return RequestBody()


class FakeRestApi:
    """Registers the routes on an aiohttp app and implements them against the state."""

    def __init__(self, state: FakeDiscordState) -> None:
        self.state = state

    # -- plumbing --------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        bot, hook = self._bot_route, self._open_route
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", bot(self.get_me)),
            ("POST", "/users/@me/channels", bot(self.create_dm)),
            ("GET", "/users/{user_id}", bot(self.get_user)),
            ("GET", "/oauth2/applications/@me", bot(self.get_application)),
            ("GET", "/gateway", hook(self.get_gateway)),
            ("GET", "/gateway/bot", bot(self.get_gateway_bot)),
            ("GET", "/applications/{application_id}/commands", bot(self.list_commands)),
            ("PUT", "/applications/{application_id}/commands", bot(self.put_commands)),
            ("POST", "/applications/{application_id}/commands", bot(self.post_command)),
            (
                "DELETE",
                "/applications/{application_id}/commands/{command_id}",
                bot(self.delete_command),
            ),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                bot(self.list_commands),
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                bot(self.put_commands),
            ),
            (
                "POST",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                bot(self.post_command),
            ),
            (
                "DELETE",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                bot(self.delete_command),
            ),
            ("POST", "/interactions/{interaction_id}/{token}/callback", hook(self.callback)),
            ("POST", "/webhooks/{application_id}/{token}", hook(self.followup)),
            (
                "GET",
                "/webhooks/{application_id}/{token}/messages/@original",
                hook(self.get_webhook_message),
            ),
            (
                "PATCH",
                "/webhooks/{application_id}/{token}/messages/@original",
                hook(self.edit_webhook_message),
            ),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/@original",
                hook(self.delete_webhook_message),
            ),
            (
                "GET",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                hook(self.get_webhook_message),
            ),
            (
                "PATCH",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                hook(self.edit_webhook_message),
            ),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                hook(self.delete_webhook_message),
            ),
            ("GET", "/channels/{channel_id}", bot(self.get_channel)),
            ("POST", "/channels/{channel_id}/typing", bot(self.typing)),
            ("POST", "/channels/{channel_id}/messages", bot(self.create_channel_message)),
            ("GET", "/channels/{channel_id}/messages/{message_id}", bot(self.get_channel_message)),
            (
                "PATCH",
                "/channels/{channel_id}/messages/{message_id}",
                bot(self.edit_channel_message),
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}",
                bot(self.delete_channel_message),
            ),
            ("GET", "/guilds/{guild_id}", bot(self.get_guild)),
            ("GET", "/guilds/{guild_id}/members/{user_id}", bot(self.get_member)),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, API_PREFIX + path, handler)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self.download_attachment)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        call = RecordedCall(
            method=request.method,
            path=request.path[len(API_PREFIX) :],
            route=route_template(request),
            query=dict(request.query),
            json=None,
            files=[],
            headers={k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            at=self.state.clock(),
        )
        self.state.calls.append(call)
        try:
            body = await read_body(request)
            call.json, call.files = body.json, body.files
            request["body"] = body
            response = await handler(request)
        except DiscordAPIError as error:
            response = json_response(error.body(), error.status, error.headers)
        except web.HTTPNotFound:
            response = json_response(not_found().body(), 404)
        except web.HTTPMethodNotAllowed:
            response = json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
        except Exception as error:  # a bug in the fake: answer loudly, keep it for the test
            _log.exception("fake Discord failed on %s %s", request.method, call.route)
            self.state.internal_errors.append(error)
            # 503 is not retried by discord.py, so the bot sees the failure at once.
            response = json_response({"message": f"fake Discord error: {error!r}", "code": 0}, 503)
        call.status = response.status
        call.response = response.get("json")
        await self.state.notify()
        return response

    def _bot_route(self, handler: Handler) -> Handler:
        """Routes that need `Authorization: Bot <token>`."""

        async def checked(request: web.Request) -> web.StreamResponse:
            expected = f"Bot {self.state.config.bot_token}"
            if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
                raise unauthorized()
            return await handler(request)

        return checked

    def _open_route(self, handler: Handler) -> Handler:
        return handler

    @staticmethod
    def _body(request: web.Request) -> RequestBody:
        body: RequestBody = request["body"]
        return body

    def _message(self, message: FakeMessage) -> JSON:
        return self.state.message_payload(message)

    def _edit_headers(self, info: RateLimitInfo) -> dict[str, str]:
        return info.headers() if self.state.config.advertise_rate_limits else {}

    # -- identity and gateway --------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        me = self.state.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0}
        return json_response(me)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.state.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def get_application(self, request: web.Request) -> web.Response:
        state = self.state
        return json_response(
            {
                "id": str(state.application_id),
                "name": state.config.bot_name,
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": state.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "summary": "",
                "rpc_origins": [],
                "bot": state.bot_user.payload(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": len(state.guilds),
            }
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url(request)})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self._gateway_url(request),
                "shards": self.state.config.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    def _gateway_url(self, request: web.Request) -> str:
        return f"ws://{request.host}/gateway"

    # -- application commands --------------------------------------------------------------

    def _command_list(self, request: web.Request) -> tuple[list[JSON], int | None]:
        if int(request.match_info["application_id"]) != self.state.application_id:
            raise DiscordAPIError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return self.state.global_commands, None
        if int(guild_id) not in self.state.guilds:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        return self.state.guild_commands.setdefault(int(guild_id), []), int(guild_id)

    def _stored_command(self, data: JSON, guild_id: int | None, existing: list[JSON]) -> JSON:
        previous = next((c for c in existing if c["name"] == data.get("name")), None)
        command = dict(data)
        command.setdefault("type", 1)
        command["id"] = previous["id"] if previous else str(self.state.snowflake())
        command["application_id"] = str(self.state.application_id)
        command["version"] = str(self.state.snowflake())
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def list_commands(self, request: web.Request) -> web.Response:
        commands, _ = self._command_list(request)
        return json_response(commands)

    async def put_commands(self, request: web.Request) -> web.Response:
        commands, guild_id = self._command_list(request)
        payload = self._body(request).json
        if not isinstance(payload, list):
            raise invalid_form((), "BASE_TYPE_ARRAY", "Must be an array.")
        if len(payload) > 100:
            raise invalid_form((), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        names: set[tuple[str, int]] = set()
        for index, command in enumerate(payload):
            _check_command(command, (index,))
            key = (str(command.get("name")), int(command.get("type", 1)))
            if key in names:
                raise invalid_form(
                    (index, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            names.add(key)
        stored = [self._stored_command(c, guild_id, commands) for c in payload]
        commands[:] = stored
        return json_response(stored)

    async def post_command(self, request: web.Request) -> web.Response:
        commands, guild_id = self._command_list(request)
        data = self._body(request).payload
        _check_command(data, ())
        stored = self._stored_command(data, guild_id, commands)
        created = all(c["id"] != stored["id"] for c in commands)
        commands[:] = [c for c in commands if c["id"] != stored["id"]] + [stored]
        return json_response(stored, 201 if created else 200)

    async def delete_command(self, request: web.Request) -> web.Response:
        commands, _ = self._command_list(request)
        command_id = request.match_info["command_id"]
        if all(c["id"] != command_id for c in commands):
            raise DiscordAPIError(404, 10063, "Unknown application command")
        commands[:] = [c for c in commands if c["id"] != command_id]
        return no_content()

    # -- interaction callbacks -------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        state = self.state
        interaction = state.interaction_for_callback(
            int(request.match_info["interaction_id"]), request.match_info["token"]
        )
        body = self._body(request)
        payload = body.payload
        response_type = payload.get("type")
        data: JSON = payload.get("data") or {}
        if response_type not in _ALLOWED_CALLBACKS.get(interaction.type, set()):
            raise invalid_form(
                ("type",),
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Interaction response type is invalid for this interaction",
            )
        message: FakeMessage | None = None
        if response_type in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            check_files(body.files, interaction.attachment_size_limit)
            check_message(data, body.files, ("data",))
        if response_type == CHANNEL_MESSAGE:
            message = state.create_message(
                channel=interaction.channel,
                payload=data,
                files=body.files,
                source="interaction_response",
                interaction=interaction,
                message_type=interaction_message_type(interaction),
            )
            interaction.original_message_id = message.id
            interaction.ephemeral = message.ephemeral
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            message = state.create_message(
                channel=interaction.channel,
                payload={"flags": int(data.get("flags") or 0) & FLAG_EPHEMERAL},
                files=[],
                source="interaction_response",
                interaction=interaction,
                message_type=interaction_message_type(interaction),
                extra_flags=FLAG_LOADING,
                allow_empty=True,
            )
            interaction.original_message_id = message.id
            interaction.ephemeral = message.ephemeral
            interaction.deferred_pending = True
        elif response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            message = self._target_message(interaction)
            if response_type == UPDATE_MESSAGE:
                route = "/interactions/{interaction_id}/{token}/callback"
                state.edit_message(message, data, body.files, route)
            interaction.original_message_id = message.id
            interaction.ephemeral = message.ephemeral
        elif response_type == AUTOCOMPLETE_RESULT:
            check_autocomplete(payload)
            interaction.autocomplete_choices = list(data["choices"])
        elif response_type == MODAL:
            _check_modal(data)
            interaction.modal = data
        interaction.acknowledged_at = state.clock()
        interaction.response_type = response_type
        result: JSON = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": bool(message and message.loading),
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None and response_type != DEFERRED_UPDATE_MESSAGE:
            result["resource"] = {"type": response_type, "message": self._message(message)}
        if request.query.get("with_response") in ("1", "true", "True"):
            return json_response(result)
        return no_content()

    def _target_message(self, interaction: FakeInteraction) -> FakeMessage:
        message = self.state.messages.get(interaction.target_message_id or 0)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    # -- interaction webhooks --------------------------------------------------------------

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        return self.state.interaction_for_webhook(
            int(request.match_info["application_id"]), request.match_info["token"]
        )

    def _webhook_target(self, request: web.Request, interaction: FakeInteraction) -> FakeMessage:
        raw_id = request.match_info.get("message_id", "@original")
        if raw_id == "@original":
            message_id = interaction.original_message_id
        elif raw_id.isdigit() and (
            int(raw_id) == interaction.original_message_id
            or int(raw_id) in interaction.followup_message_ids
        ):
            message_id = int(raw_id)
        else:
            message_id = None
        message = self.state.messages.get(message_id or 0)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    async def followup(self, request: web.Request) -> web.Response:
        state = self.state
        interaction = self._webhook_interaction(request)
        if not interaction.acknowledged:
            raise unknown_webhook()
        body = self._body(request)
        payload = body.payload
        check_files(body.files, interaction.attachment_size_limit)
        check_message(payload, body.files)
        original = interaction.original_message()
        if interaction.deferred_pending and original is not None and not original.deleted:
            # Discord turns the first followup after a deferral into the deferred message.
            state.edit_message(original, payload, body.files, "/webhooks/{application_id}/{token}")
            interaction.deferred_pending = False
            return json_response(self._message(original))
        message = state.create_message(
            channel=interaction.channel,
            payload=payload | {"flags": int(payload.get("flags") or 0) & _FOLLOWUP_FLAGS},
            files=body.files,
            source="followup",
            interaction=interaction,
        )
        interaction.followup_message_ids.append(message.id)
        return json_response(self._message(message))

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return json_response(self._message(self._webhook_target(request, interaction)))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_target(request, interaction)
        info = self.state.take_edit(message.id)
        body = self._body(request)
        check_files(body.files, interaction.attachment_size_limit)
        check_message(body.payload, body.files)
        self.state.edit_message(message, body.payload, body.files, route_template(request))
        if message.id == interaction.original_message_id:
            interaction.deferred_pending = False
        return json_response(self._message(message), headers=self._edit_headers(info))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_target(request, interaction)
        message.deleted_at = self.state.clock()
        return no_content()

    # -- channels and messages with the bot token ------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.state.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise unknown_channel()
        return channel

    def _check_can_send(self, channel: FakeChannel, with_files: bool) -> int:
        """Raise what Discord raises when the bot may not post here; return the upload limit."""
        if channel.guild_id is None:
            if channel.recipient is not None and not channel.recipient.accepts_dms:
                raise cannot_dm_user()
            return DEFAULT_FILESIZE_LIMIT
        guild = self.state.guilds[channel.guild_id]
        permissions = guild.bot_permissions_in(channel)
        if not permissions & _VIEW_CHANNEL:
            raise missing_access()
        if not permissions & _SEND_MESSAGES or (with_files and not permissions & _ATTACH_FILES):
            raise missing_permissions()
        return guild.filesize_limit

    def _channel_message(self, request: web.Request, channel: FakeChannel) -> FakeMessage:
        message = self.state.messages.get(int(request.match_info["message_id"]))
        if (
            message is None
            or message.deleted
            or message.ephemeral
            or (message.channel_id != channel.id)
        ):
            raise unknown_message()
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.guild_id is not None:
            guild = self.state.guilds[channel.guild_id]
            overwrite = (self.state.bot_user.id, guild.bot_permissions_in(channel))
            return json_response(channel.payload(bot_overwrite=overwrite))
        return json_response(channel.payload())

    async def typing(self, request: web.Request) -> web.Response:
        self._check_can_send(self._channel(request), with_files=False)
        return no_content()

    async def create_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = self._body(request)
        size_limit = self._check_can_send(channel, with_files=bool(body.files))
        check_files(body.files, size_limit)
        check_message(body.payload, body.files)
        payload = body.payload | {
            "flags": int(body.payload.get("flags") or 0)
            & (FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS)
        }
        message = self.state.create_message(
            channel=channel,
            payload=payload,
            files=body.files,
            source="channel",
            message_type=19 if "message_reference" in body.payload else 0,
        )
        return json_response(self._message(message))

    async def get_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        return json_response(self._message(self._channel_message(request, channel)))

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._channel_message(request, channel)
        if message.author.id != self.state.bot_user.id:
            raise DiscordAPIError(403, 50005, "Cannot edit a message authored by another user")
        info = self.state.take_edit(message.id)
        body = self._body(request)
        size_limit = self._check_can_send(channel, with_files=bool(body.files))
        check_files(body.files, size_limit)
        check_message(body.payload, body.files)
        route = "/channels/{channel_id}/messages/{message_id}"
        self.state.edit_message(message, body.payload, body.files, route)
        return json_response(self._message(message), headers=self._edit_headers(info))

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._channel_message(request, channel)
        message.deleted_at = self.state.clock()
        return no_content()

    async def create_dm(self, request: web.Request) -> web.Response:
        recipient_id = int(self._body(request).payload.get("recipient_id", 0))
        user = self.state.users.get(recipient_id)
        if user is None:
            raise invalid_form(("recipient_id",), "USER_NOT_FOUND", "Unknown User")
        channel = self.state.dm_channel(user)
        return json_response(channel.payload())

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.state.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        return json_response(guild.payload(members=[], bot_id=self.state.bot_user.id))

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.state.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordAPIError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    async def download_attachment(self, request: web.Request) -> web.Response:
        attachment_id = int(request.match_info["attachment_id"])
        for message in self.state.messages.values():
            for attachment in message.attachments:
                if attachment.id == attachment_id:
                    content_type = attachment.content_type or "application/octet-stream"
                    return web.Response(
                        body=attachment.data, headers={"Content-Type": content_type}
                    )
        raise web.HTTPNotFound()


def _check_command(command: Any, path: tuple[str | int, ...]) -> None:
    """The checks Discord applies to an application command definition."""
    if not isinstance(command, dict):
        raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    name = str(command.get("name", ""))
    is_chat_input = int(command.get("type", 1)) == 1
    if not _COMMAND_NAME.match(name) or (is_chat_input and name != name.lower()):
        raise invalid_form((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
    if is_chat_input:
        _check_description(command, path)
        _check_options(command.get("options") or [], (*path, "options"))


def _check_description(item: JSON, path: tuple[str | int, ...]) -> None:
    description = str(item.get("description", ""))
    if not 1 <= len(description) <= 100:
        raise invalid_form(
            (*path, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )


def _check_options(options: list[JSON], path: tuple[str | int, ...]) -> None:
    if len(options) > 25:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for index, option in enumerate(options):
        option_path = (*path, index)
        name = str(option.get("name", ""))
        if not _COMMAND_NAME.match(name) or name != name.lower():
            raise invalid_form(
                (*option_path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name"
            )
        _check_description(option, option_path)
        if len(option.get("choices") or []) > 25:
            raise invalid_form(
                (*option_path, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        if option.get("type") in (1, 2):
            _check_options(option.get("options") or [], (*option_path, "options"))
            continue
        if option.get("required"):
            if seen_optional:
                raise invalid_form(
                    (*option_path, "required"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True


def _check_modal(data: JSON) -> None:
    for key, low, high in (("custom_id", 1, 100), ("title", 1, 45)):
        if not low <= len(str(data.get(key, ""))) <= high:
            raise invalid_form(
                ("data", key),
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between {low} and {high} in length.",
            )
    if not 1 <= len(data.get("components") or []) <= 5:
        raise invalid_form(
            ("data", "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
