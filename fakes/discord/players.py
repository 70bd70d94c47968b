"""Discord's side of an interaction: the INTERACTION_CREATE payload a member's slash command,
autocomplete, click or modal submission produces, sent to the connected bot over the gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import discord

from fakes.discord.gateway import FakeGateway
from fakes.discord.models import (
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    JSON,
    FakeAttachment,
    FakeChannel,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
)
from fakes.discord.state import FakeDiscordState, FakeInteraction

_OPTION_TYPES: tuple[tuple[type, int], ...] = (
    (bool, 5),
    (int, 4),
    (float, 10),
    (str, 3),
    (FakeMember, 6),
    (FakeUser, 6),
    (FakeChannel, 7),
    (FakeRole, 8),
    (FakeAttachment, 11),
)
# Declared option types a Python value may answer (a whole number also fits a "number").
_COMPATIBLE_TYPES = {5: {5}, 4: {4, 10}, 10: {10}, 3: {3}, 6: {6, 9}, 7: {7}, 8: {8, 9}, 11: {11}}
_SUBCOMMAND, _SUBCOMMAND_GROUP = 1, 2
# What a user-installed app may do through the interaction where the bot is not a member
# (Discord sends the app's permissions for the interaction's own responses).
USER_APP_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, attach_files=True,
    read_message_history=True, use_external_emojis=True,
).value
# Interaction contexts (Discord's `context`).
GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT = 0, 1, 2


class InteractionSender:
    """Builds interaction payloads from the world and the bot's registered commands."""

    def __init__(self, state: FakeDiscordState, gateway: FakeGateway) -> None:
        self.state = state
        self.gateway = gateway
        self._command_ids: dict[str, int] = {}

    def registered_command(self, channel: FakeChannel, name: str) -> JSON | None:
        guild_commands = self.state.guild_commands.get(channel.guild_id or 0, [])
        for command in [*guild_commands, *self.state.global_commands]:
            if command["name"] == name and int(command.get("type", 1)) == 1:
                return command
        return None

    def command_data(
        self,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any],
        focused: str | None,
    ) -> JSON:
        name, *path = command.split()
        registered = self.registered_command(channel, name)
        schema: list[JSON] | None = registered.get("options", []) if registered else None
        resolved: JSON = {}
        leaf_schema = schema
        for part in path:
            if leaf_schema is not None:
                node = next((o for o in leaf_schema if o["name"] == part), None)
                if node is None:
                    raise ValueError(f"/{name} has no subcommand or group {part!r}")
                leaf_schema = node.get("options", [])
        leaf = [
            self._option(key, value, leaf_schema, resolved, focused == key)
            for key, value in options.items()
        ]
        for index, part in reversed(list(enumerate(path))):
            kind = _SUBCOMMAND if index == len(path) - 1 else _SUBCOMMAND_GROUP
            leaf = [{"type": kind, "name": part, "options": leaf}]
        data: JSON = {"name": name, "type": 1, "options": leaf}
        if registered is not None:
            data["id"] = registered["id"]
            if "guild_id" in registered:
                data["guild_id"] = registered["guild_id"]
        else:
            data["id"] = str(self._command_ids.setdefault(name, self.state.snowflake()))
        if resolved:
            data["resolved"] = resolved
        return data

    def _option(
        self, name: str, value: Any, schema: list[JSON] | None, resolved: JSON, focused: bool
    ) -> JSON:
        option_type = next((t for cls, t in _OPTION_TYPES if isinstance(value, cls)), None)
        if option_type is None:
            raise TypeError(f"cannot send option {name!r} of type {type(value).__name__}")
        if schema is not None:
            declared = next((o for o in schema if o["name"] == name), None)
            if declared is None:
                raise ValueError(f"the registered command has no option {name!r}")
            # Discord's client sends only values of the declared type (lengths and ranges it
            # also enforces are left unchecked, so tests can play an outdated client).
            if not focused and int(declared["type"]) not in _COMPATIBLE_TYPES[option_type]:
                raise TypeError(f"option {name!r} is declared as type {declared['type']}")
            option_type = int(declared["type"])
        if isinstance(value, FakeMember):
            resolved.setdefault("users", {})[str(value.id)] = value.user.payload()
            member = value.payload(permissions=self._member_permissions(value))
            member.pop("user")
            resolved.setdefault("members", {})[str(value.id)] = member
            value = str(value.id)
        elif isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            value = str(value.id)
        elif isinstance(value, FakeChannel):
            channel = value.payload() | {"permissions": str(self._bot_permissions(value))}
            resolved.setdefault("channels", {})[str(value.id)] = channel
            value = str(value.id)
        elif isinstance(value, FakeAttachment):
            # Discord stores the file first; the interaction names it in `resolved`.
            self.state.uploads[value.id] = value
            upload = value.payload(self.state.attachment_base)
            resolved.setdefault("attachments", {})[str(value.id)] = upload
            value = str(value.id)
        elif isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            value = str(value.id)
        option: JSON = {"name": name, "type": option_type, "value": value}
        if focused:
            option["focused"] = True
        return option

    def _member_permissions(self, member: FakeMember) -> int:
        return self.state.guilds[member.guild_id].permissions_of(member)

    def _bot_permissions(self, channel: FakeChannel) -> int:
        if channel.is_private_channel or (
            channel.guild_id is not None and channel.guild_id not in self.state.guilds
        ):
            return USER_APP_PERMISSIONS  # where the bot is not: only the interaction's own
        if channel.guild_id is None:
            return BOT_PERMISSIONS
        return self.state.guilds[channel.guild_id].bot_permissions_in(channel)

    async def send(
        self,
        interaction_type: int,
        data: JSON,
        channel: FakeChannel,
        member: FakeMember,
        attachment_size_limit: int | None,
        locale: str,
        *,
        message: FakeMessage | None = None,
        user_install: bool = False,
    ) -> FakeInteraction:
        """`user_install`: the command comes from the app installed to the member's account
        (`authorizing_integration_owners` {"1": user id}); a channel of a guild the bot is not
        in, a DM between members or a group DM is reachable only that way (context 2 for the
        last two; the bot's own DM is context 1, a server's channel context 0)."""
        state = self.state
        guild = state.guilds.get(channel.guild_id or 0)
        size_limit = attachment_size_limit or (guild.filesize_limit if guild else 10 << 20)
        interaction_id, token = state.snowflake(), state.new_token()
        channel_payload = channel.payload() | {"permissions": str(self._bot_permissions(channel))}
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(state.application_id),
            "type": interaction_type,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "app_permissions": str(self._bot_permissions(channel)),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": size_limit,
        }
        foreign_guild = channel.guild_id is not None and guild is None
        if foreign_guild or channel.is_private_channel:
            user_install = True  # the bot is not there: only a user install can be asked
        if user_install:
            owners: JSON = {"1": str(member.user.id)}
            if guild is not None:
                owners["0"] = str(guild.id)  # the server installed the bot too
            if foreign_guild:
                assert channel.guild_id is not None  # what makes the guild foreign
                payload |= _in_guild(
                    channel.guild_id, locale, member.payload(permissions=EVERYONE_PERMISSIONS)
                ) | {"context": GUILD_CONTEXT}
            elif guild is not None:
                payload |= _in_guild(
                    guild.id, guild.locale, member.payload(permissions=guild.permissions_of(member))
                ) | {"context": GUILD_CONTEXT}
            else:
                payload |= {
                    "user": member.user.payload(),
                    "context": (
                        PRIVATE_CHANNEL_CONTEXT if channel.is_private_channel else BOT_DM_CONTEXT
                    ),
                }
            payload["authorizing_integration_owners"] = owners
        elif guild is not None:
            payload |= _in_guild(
                guild.id, guild.locale, member.payload(permissions=guild.permissions_of(member))
            ) | {"authorizing_integration_owners": {"0": str(guild.id)}, "context": GUILD_CONTEXT}
        else:
            payload |= {
                "user": member.user.payload(),
                "authorizing_integration_owners": {"0": "0"},  # a server install, in the bot DM
                "context": BOT_DM_CONTEXT,
            }
        if message is not None:
            payload["message"] = state.message_payload(message)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            type=interaction_type,
            data=data,
            guild=guild,
            channel=channel,
            member=member,
            created_at=self.state.clock(),
            attachment_size_limit=size_limit,
            payload=payload,
            target_message_id=message.id if message is not None else None,
            _state=state,
        )
        # Stored before sending: the bot may answer before `dispatch` returns.
        state.interactions[interaction_id] = interaction
        state.interactions_by_token[token] = interaction
        try:
            await self.gateway.dispatch("INTERACTION_CREATE", payload, channel.guild_id)
        except BaseException:
            del state.interactions[interaction_id], state.interactions_by_token[token]
            raise
        await state.notify()
        return interaction


def walk_components(components: list[JSON]) -> list[JSON]:
    found: list[JSON] = []
    for component in components:
        found.append(component)
        found.extend(walk_components(component.get("components") or []))
        if isinstance(component.get("component"), dict):
            found.extend(walk_components([component["component"]]))
    return found


def submitted(component: JSON, values: Mapping[str, str | Sequence[str]]) -> JSON:
    """What a member's submission looks like for one modal component."""
    if component.get("type") == 1:
        return {"type": 1, "components": [submitted(c, values) for c in component["components"]]}
    if isinstance(component.get("component"), dict):  # a label around one input
        return {"type": component["type"], "component": submitted(component["component"], values)}
    answer: JSON = {"type": component["type"], "custom_id": component.get("custom_id")}
    value = values.get(str(component.get("custom_id")), "")
    if isinstance(value, str):
        answer["value"] = value
    else:
        answer["values"] = list(value)
    return answer


def _in_guild(guild_id: int, locale: str, member: JSON) -> JSON:
    """What an interaction from inside a guild carries: the guild, its locale and the member."""
    return {
        "guild_id": str(guild_id),
        "guild": {"id": str(guild_id), "locale": locale, "features": []},
        "guild_locale": locale,
        "member": member,
    }
