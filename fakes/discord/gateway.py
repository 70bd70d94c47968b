"""The fake Discord gateway: HELLO → IDENTIFY → READY → GUILD_CREATE, heartbeats, dispatch.

Plain-text JSON frames with increasing `s` (discord.py accepts them beside zlib-stream).
Several connections may be open at once (shards, several bot processes); an event for a
guild goes to the newest live connection whose shard owns that guild. Each IDENTIFY spends one
of the configured session starts; one past them resets the token, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from fakes.discord.models import JSON, FakeGuild, FakeMember
from fakes.discord.state import FakeDiscordState

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS = 0, 1, 2, 6, 8
RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 7, 9, 10, 11
INTENT_MEMBERS, INTENT_PRESENCES, INTENT_MESSAGE_CONTENT = 1 << 1, 1 << 8, 1 << 15
PRIVILEGED_INTENTS = INTENT_MEMBERS | INTENT_PRESENCES | INTENT_MESSAGE_CONTENT
CLOSE_AUTH_FAILED, CLOSE_INVALID_SHARD, CLOSE_DISALLOWED_INTENTS = 4004, 4010, 4014


@dataclass(eq=False)
class GatewayConnection:
    """One bot websocket; `shard` is (shard_id, shard_count), (0, 1) when unsharded."""

    ws: web.WebSocketResponse
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    sequence: int = 0
    shard: tuple[int, int] = (0, 1)
    intents: int = 0
    identified: bool = False
    heartbeats: int = 0
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def owns_guild(self, guild_id: int | None) -> bool:
        shard_id, shard_count = self.shard
        return shard_id == ((guild_id or 0) >> 22) % shard_count

    async def send(self, op: int, data: Any = None, event: str | None = None) -> None:
        async with self._send_lock:
            sequence = None
            if op == DISPATCH:
                self.sequence += 1
                sequence = self.sequence
            frame = {"op": op, "d": data, "s": sequence, "t": event}
            await self.ws.send_str(json.dumps(frame))


class FakeGateway:
    """Serves `/gateway` and routes dispatches to the right connection."""

    def __init__(self, state: FakeDiscordState) -> None:
        self.state = state
        self.url = ""
        self.connections: list[GatewayConnection] = []  # identified, live, oldest first
        self._sessions: dict[str, GatewayConnection] = {}
        self._all: set[GatewayConnection] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = GatewayConnection(ws)
        self._all.add(connection)
        try:
            interval_ms = int(self.state.config.heartbeat_interval * 1000)
            await connection.send(HELLO, {"heartbeat_interval": interval_ms})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(connection, json.loads(message.data))
        except ConnectionResetError:
            pass
        finally:
            self._all.discard(connection)
            if connection in self.connections:
                self.connections.remove(connection)
            await self.state.notify()
        return ws

    async def _on_frame(self, connection: GatewayConnection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            connection.heartbeats += 1
            await connection.send(HEARTBEAT_ACK)
        elif op == IDENTIFY:
            await self._identify(connection, data or {})
        elif op == RESUME:
            await self._resume(connection, data or {})
        elif op == REQUEST_MEMBERS:
            await self._send_member_chunk(connection, data or {})
        # Presence (3) and voice (4) updates need no answer here.

    async def _identify(self, connection: GatewayConnection, data: JSON) -> None:
        if data.get("token") != self.state.config.bot_token:
            await connection.ws.close(code=CLOSE_AUTH_FAILED, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        shard_id, shard_count = int(shard[0]), int(shard[1])
        if not 0 <= shard_id < shard_count:
            await connection.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.state.config.privileged_intents:
            await connection.ws.close(
                code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s)."
            )
            return
        if not self.state.session_starts_left:
            await self._reset_token()
            return
        self.state.identifies += 1
        connection.shard, connection.intents = (shard_id, shard_count), intents
        guilds = [g for g in self.state.guilds.values() if connection.owns_guild(g.id)]
        ready: JSON = {
            "v": 10,
            "user": self.state.bot_user.payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": connection.session_id,
            "resume_gateway_url": self.url,
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
        }
        if "shard" in data:
            ready["shard"] = [shard_id, shard_count]
        connection.identified = True
        self._sessions[connection.session_id] = connection
        self.connections.append(connection)
        await connection.send(DISPATCH, ready, "READY")
        for guild in guilds:
            await connection.send(DISPATCH, self.guild_payload(guild, intents), "GUILD_CREATE")
        await self.state.notify()

    async def _reset_token(self) -> None:
        """An IDENTIFY past the daily budget: Discord ends every session and resets the token."""
        self.state.token_resets += 1
        self.state.config.bot_token = "reset-" + secrets.token_hex(16)
        for connection in list(self._all):
            if not connection.ws.closed:
                await connection.ws.close(
                    code=CLOSE_AUTH_FAILED, message=b"Session start limit reached; token reset."
                )

    async def _resume(self, connection: GatewayConnection, data: JSON) -> None:
        previous = self._sessions.get(str(data.get("session_id")))
        if previous is None or data.get("token") != self.state.config.bot_token:
            await connection.send(INVALID_SESSION, False)
            return
        connection.session_id, connection.shard = previous.session_id, previous.shard
        connection.intents, connection.sequence = previous.intents, previous.sequence
        connection.identified = True
        if previous in self.connections:
            self.connections.remove(previous)
        self._sessions[connection.session_id] = connection
        self.connections.append(connection)
        await connection.send(DISPATCH, {}, "RESUMED")
        await self.state.notify()

    async def _send_member_chunk(self, connection: GatewayConnection, data: JSON) -> None:
        guild = self.state.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        chunk = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "nonce": data.get("nonce"),
        }
        await connection.send(DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")

    def guild_payload(self, guild: FakeGuild, intents: int) -> JSON:
        """GUILD_CREATE: every member with the members intent, else only the bot itself."""
        members: list[FakeMember] = list(guild.members.values())
        if not intents & INTENT_MEMBERS:
            members = [m for m in members if m.id == self.state.bot_user.id]
        for role in guild.roles:
            if role.managed:
                role.permissions = guild.bot_permissions
        return guild.payload(members=members, bot_id=self.state.bot_user.id)

    def connection_for(self, guild_id: int | None) -> GatewayConnection:
        for connection in reversed(self.connections):
            if not connection.ws.closed and connection.owns_guild(guild_id):
                return connection
        raise RuntimeError(f"no bot is connected to the fake gateway for guild {guild_id}")

    async def dispatch(self, event: str, data: JSON, guild_id: int | None) -> None:
        await self.connection_for(guild_id).send(DISPATCH, data, event)

    async def close_all(self) -> None:
        for connection in list(self._all):
            if not connection.ws.closed:
                await connection.ws.close(code=1001, message=b"fake Discord stopping")
