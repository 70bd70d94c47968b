"""The fake Discord REST API (the routes discord.py 2.7.1 uses in a bot's flow).

Every request under the API prefix is recorded (`state.calls`) and checked against Discord's
published OpenAPI description (`spec_check`) before it is handled: a request that breaks the
spec is answered 400/50035 as Discord would and kept in `state.spec_violations`, so the test
that made it fails. Errors answer with Discord's JSON shape and every JSON answer's
Content-Type is exactly `application/json` (discord.py treats anything else as text).

This module holds the plumbing, identity, gateway, channel, DM and guild routes; the
application commands are in `command_routes`, interaction callbacks and webhooks in
`interaction_routes`.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from fakes.discord.command_routes import CommandRoutes
from fakes.discord.interaction_routes import InteractionRoutes
from fakes.discord.limits import (
    DiscordAPIError,
    FormErrors,
    cannot_dm_user,
    check_files,
    check_message,
    invalid_form,
    missing_access,
    missing_permissions,
    not_found,
    unauthorized,
    unknown_channel,
    unknown_message,
)
from fakes.discord.models import (
    DEFAULT_FILESIZE_LIMIT,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    JSON,
    FakeChannel,
    FakeMessage,
    RecordedCall,
)
from fakes.discord.spec_check import SpecCheck, SpecViolation, default_spec_check
from fakes.discord.state import FakeDiscordState
from fakes.discord.wire import (
    API_PREFIX,
    Handler,
    RequestBody,
    Route,
    edit_headers,
    json_response,
    no_content,
    read_body,
    request_body,
    route_template,
)

__all__ = ["API_PREFIX", "FakeRestApi", "RequestBody", "json_response", "route_template"]

_log = logging.getLogger(__name__)

_VIEW_CHANNEL, _SEND_MESSAGES, _ATTACH_FILES = 1 << 10, 1 << 11, 1 << 15


class FakeRestApi:
    """Registers the routes on an aiohttp app and implements them against the state."""

    def __init__(self, state: FakeDiscordState, spec: SpecCheck | None = None) -> None:
        self.state = state
        self.spec = spec

    # -- plumbing --------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        if self.spec is None and self.state.config.check_spec:
            self.spec = default_spec_check()
        routes: list[Route] = [
            ("GET", "/users/@me", self.get_me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            *CommandRoutes(self.state).routes(),
            *InteractionRoutes(self.state).routes(),
            ("GET", "/channels/{channel_id}", self.get_channel, True),
            ("POST", "/channels/{channel_id}/typing", self.typing, True),
            ("POST", "/channels/{channel_id}/messages", self.create_channel_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_channel_message, True),
            (
                "PATCH",
                "/channels/{channel_id}/messages/{message_id}",
                self.edit_channel_message,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}",
                self.delete_channel_message,
                True,
            ),
            ("GET", "/guilds/{guild_id}", self.get_guild, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member, True),
        ]
        for method, path, handler, needs_bot_token in routes:
            checked = self._bot_route(handler) if needs_bot_token else handler
            app.router.add_route(method, API_PREFIX + path, checked)
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
            peer=_peer(request),
        )
        self.state.calls.append(call)
        try:
            body = await read_body(request)
            call.json, call.files = body.json, body.files
            request["body"] = body
            self._check_spec(call, body)
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

    def _check_spec(self, call: RecordedCall, body: RequestBody) -> None:
        """Answer a request that breaks Discord's spec as Discord would, and keep the record."""
        if self.spec is None:
            return
        violations = self.spec.check(
            call.method, call.path, call.query, body.json, body.files, self._attachment_ids
        )
        if not violations:
            return
        self.state.spec_violations.extend(violations)
        _log.warning("spec violations: %s", "; ".join(map(str, violations)))
        form = FormErrors()
        for violation in violations:
            form.add(_form_path(violation), violation.code, violation.message)
        form.raise_if_any()

    def _attachment_ids(self) -> set[int]:
        return {a.id for m in self.state.messages.values() for a in m.attachments}

    def _bot_route(self, handler: Handler) -> Handler:
        """Routes that need `Authorization: Bot <token>`."""

        async def checked(request: web.Request) -> web.StreamResponse:
            expected = f"Bot {self.state.config.bot_token}"
            if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
                raise unauthorized()
            return await handler(request)

        return checked

    def _message(self, message: FakeMessage) -> JSON:
        return self.state.message_payload(message)

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
                "session_start_limit": self.state.session_start_limit(),
            }
        )

    def _gateway_url(self, request: web.Request) -> str:
        return f"ws://{request.host}/gateway"

    # -- application commands --------------------------------------------------------------

    # -- channels and messages with the bot token ------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.state.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise unknown_channel()
        return channel

    def _check_can_send(self, channel: FakeChannel, with_files: bool) -> int:
        """Raise what Discord raises when the bot may not post here; return the upload limit."""
        if channel.guild_id is None:
            if channel.is_private_channel:  # a DM between members, a group DM: not the bot's
                raise missing_access()
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
        if channel.is_private_channel:
            raise missing_access()
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
        body = request_body(request)
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
        body = request_body(request)
        size_limit = self._check_can_send(channel, with_files=bool(body.files))
        check_files(body.files, size_limit)
        check_message(body.payload, body.files)
        route = "/channels/{channel_id}/messages/{message_id}"
        self.state.edit_message(message, body.payload, body.files, route)
        return json_response(self._message(message), headers=edit_headers(self.state, info))

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._channel_message(request, channel)
        message.deleted_at = self.state.clock()
        return no_content()

    async def create_dm(self, request: web.Request) -> web.Response:
        recipient_id = int(request_body(request).payload.get("recipient_id", 0))
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
        upload = self.state.uploads.get(attachment_id)
        if upload is not None:
            content_type = upload.content_type or "application/octet-stream"
            return web.Response(body=upload.data, headers={"Content-Type": content_type})
        for message in self.state.messages.values():
            for attachment in message.attachments:
                if attachment.id == attachment_id:
                    content_type = attachment.content_type or "application/octet-stream"
                    return web.Response(
                        body=attachment.data, headers={"Content-Type": content_type}
                    )
        raise web.HTTPNotFound()


def _form_path(violation: SpecViolation) -> tuple[str | int, ...]:
    """Where Discord's `errors` object puts a problem: body keys as they are, others by kind."""
    kind, *rest = violation.location
    return tuple(rest) if kind == "body" else violation.location


def _peer(request: web.Request) -> tuple[str, int] | None:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return (str(peername[0]), int(peername[1])) if peername else None
