"""The fake's application command routes (list, bulk overwrite, create, delete; global and
per guild) and the checks Discord applies to a command definition."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from fakes.discord.limits import DiscordAPIError, invalid_form
from fakes.discord.models import JSON
from fakes.discord.state import FakeDiscordState
from fakes.discord.wire import Route, json_response, no_content, request_body

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_GLOBAL = "/applications/{application_id}/commands"
_GUILD = "/applications/{application_id}/guilds/{guild_id}/commands"


class CommandRoutes:
    """Application commands against the state's `global_commands` and `guild_commands`."""

    def __init__(self, state: FakeDiscordState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for base in (_GLOBAL, _GUILD):
            routes += [
                ("GET", base, self.list_commands, True),
                ("PUT", base, self.put_commands, True),
                ("POST", base, self.post_command, True),
                ("DELETE", base + "/{command_id}", self.delete_command, True),
            ]
        return routes

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
        payload = request_body(request).json
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
        data = request_body(request).payload
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
