"""Discord's own OpenAPI description (`spec/openapi.json`) checks every request sent to the fake.

`SpecCheck.check(method, path, query, json_body, files)` maps the request path onto the spec's
path template, then reports as `SpecViolation`s:
- a path or method the spec does not describe (unless listed in `UNDESCRIBED_ROUTES`);
- query parameters the operation does not declare, or of the wrong type;
- the JSON body (or the multipart `payload_json`, which the spec writes as the JSON fields plus
  `files[n]`) failing the operation's request schema (jsonschema, Draft 2020-12);
- keys no branch of that schema names (the spec's request schemas do not forbid unknown keys,
  so a typo would pass silently);
- the message rules the spec cannot express (`limits.check_cross_field_rules`);
- `attachments[].id` matching neither an uploaded `files[n]` part nor an existing attachment.

`TOLERATED_DISCORD_PY_QUIRKS` is the one list of what discord.py 2.7.1 always sends differently
from the spec; nothing else is forgiven. Validators are compiled once per (method, template).
"""

from __future__ import annotations

import copy
import functools
import gc
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from fakes.discord.limits import FormErrors, check_cross_field_rules
from fakes.discord.models import JSON, UploadedFile
from fakes.discord.spec_streamline import streamline, union_tags

SPEC_FILE = Path(__file__).with_name("spec") / "openapi.json"

# Routes a bot may use that the spec does not describe: {(METHOD, template): why}. Empty: every
# route discord.py uses in this bot's flow is in the spec at the commit in spec/SOURCE.md. A
# request to a path that is neither in the spec nor here is a violation, never skipped silently.
UNDESCRIBED_ROUTES: Mapping[tuple[str, str], str] = {}

# What discord.py 2.7.1 itself always sends differently from the spec. Each entry was checked
# against discord.py's source (named) and the spec; the checker forgives exactly these.
TOLERATED_DISCORD_PY_QUIRKS: tuple[str, ...] = (
    # file.py File.to_dict: {"id": index} -- the spec's MessageAttachmentRequest.id is a
    # SnowflakeType string.
    "attachments[].id sent as an integer",
    # mentions.py AllowedMentions.to_dict: [x.id for x in self.users] -- SnowflakeType strings
    # in the spec's MessageAllowedMentionsRequest.users.
    "allowed_mentions.users[] sent as integers",
    # embeds.py Embed.__init__ sets _flags = 0 and Embed.to_dict emits every slot -- RichEmbed
    # has no `flags`.
    "embeds[].flags sent as 0",
    # http.py handle_message_parameters: payload["tts"] = tts on every message, edits included
    # -- the spec's edit schemas (IncomingWebhookUpdateRequestPartial, MessageEditRequestPartial,
    # IncomingWebhookUpdateForInteractionCallbackRequestPartial) have no `tts`.
    "tts: false on every message payload",
    # app_commands/commands.py Command.to_dict and ContextMenu.to_dict: base["nsfw"] --
    # ApplicationCommandUpdateRequest / ApplicationCommandCreateRequest have no `nsfw`.
    "nsfw (a boolean) on every top-level application command",
    # http.py start_private_message: {"recipient_id": user_id} (an int) -- CreatePrivateChannel
    # Request.recipient_id is a SnowflakeType string. (The bot never opens DMs; the fake's own
    # tests of DM delivery do.)
    "recipient_id sent as an integer when opening a DM",
    # webhook/async_.py: {"with_response": "1"}, {"wait": int(wait), "with_components":
    # int(with_components)} -- the spec's query parameters are booleans (true/false).
    "boolean query flags sent as 1/0",
)
_QUERY_BOOLEANS = {"true", "false"}
_QUERY_BOOLEANS_DISCORD_PY = {"1", "0"}

# Where a message payload sits in each operation's body; the callback holds one in `data` for
# response types 4 (message) and 7 (update message).
_MESSAGE_AT_ROOT = {
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"),
}
_OPEN_DM = ("POST", "/users/@me/channels")
_CALLBACK = ("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
_CALLBACK_MESSAGE_TYPES = {4, 7}
_COMMAND_LISTS = {
    ("PUT", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
}
_COMMANDS = {
    ("POST", "/applications/{application_id}/commands"),
    ("POST", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("PATCH", "/applications/{application_id}/commands/{command_id}"),
    ("PATCH", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}"),
}

Location = tuple[str | int, ...]
Problem = tuple[Location, str, str]  # where, Discord's code, message
_REMEMBERED_VERDICTS = 512


@dataclass(frozen=True)
class SpecViolation:
    """One way a request breaks Discord's published description of its API."""

    method: str
    template: str  # the spec's path template (never the concrete path: it holds tokens)
    location: Location  # ("body", "data", "content"), ("query", "wait"), ("route",)
    code: str
    message: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.location)
        return f"{self.method} {self.template}: {where}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class _Operation:
    template: str
    query: Mapping[str, JSON]  # query parameter name -> its schema
    body: Validator | None  # None: the operation takes no body
    body_schema: JSON


class SpecCheck:
    """Checks requests against one OpenAPI document; share it (`default_spec_check()`)."""

    def __init__(self, spec: JSON) -> None:
        """`spec`: the parsed OpenAPI document, streamlined in place (`spec_streamline`)."""
        self.spec = spec
        # The whole document is the root resource, so every "#/components/..." $ref resolves;
        # `evolve(schema=...)` keeps that resolver for each operation's schema.
        streamline(spec, self._deref)
        self._root = Draft202012Validator(spec)
        self._paths = _PathIndex(spec["paths"])
        self._operations: dict[tuple[str, str], _Operation | None] = {}
        self._branch_validators: dict[int, Validator] = {}
        # Bodies repeat (every bot start overwrites the same commands, every deferral is
        # {"type": 5}): schema verdicts are pure, so the last few hundred are remembered.
        self._verdicts: OrderedDict[tuple[str, str, str], list[Problem]] = OrderedDict()

    # -- entry point -----------------------------------------------------------------------

    def check(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        json_body: Any,
        files: Sequence[UploadedFile] = (),
        known_attachment_ids: Callable[[], set[int]] = set,
    ) -> list[SpecViolation]:
        """Every way this request breaks the spec (empty when it conforms)."""
        method = method.upper()
        template = self._paths.match(path)
        if template is None:
            if (method, path) in UNDESCRIBED_ROUTES:
                return []
            return [SpecViolation(method, path, ("route",), "UNKNOWN_ROUTE", "Not in the spec")]
        if (method, template) in UNDESCRIBED_ROUTES:
            return []
        operation = self._operation(method, template)
        if operation is None:
            return [
                SpecViolation(method, template, ("route",), "UNKNOWN_METHOD", "Not in the spec")
            ]
        found: list[tuple[Location, str, str]] = list(self._query_problems(operation, query))
        if operation.body is None:
            if json_body is not None or files:
                found.append((("body",), "UNEXPECTED_BODY", "This operation takes no body"))
        else:
            instance = _tolerate_discord_py(method, template, json_body)
            found.extend(self._body_verdict(method, operation, instance))
            for at, message in _messages_in(method, template, instance):
                found.extend(_message_problems(message, at, files, known_attachment_ids))
        return [SpecViolation(method, template, *problem) for problem in found]

    def schema_problems(self, schema_name: str, instance: Any) -> list[str]:
        """Where `instance` breaks one of the spec's named schemas: for objects the fake itself
        sends (a channel, a user), which no request check sees."""
        schema = self.spec["components"]["schemas"][schema_name]
        validator = self._root.evolve(schema=schema)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]

    # -- operations ------------------------------------------------------------------------

    def _operation(self, method: str, template: str) -> _Operation | None:
        key = (method, template)
        if key not in self._operations:
            self._operations[key] = self._compile(method, template)
        return self._operations[key]

    def _compile(self, method: str, template: str) -> _Operation | None:
        path_item = self.spec["paths"][template]
        operation = path_item.get(method.lower())
        if operation is None:
            return None
        query = {
            parameter["name"]: self._deref(parameter.get("schema", {}))
            for parameter in [*path_item.get("parameters", []), *operation.get("parameters", [])]
            if parameter.get("in") == "query"
        }
        body = operation.get("requestBody")
        if body is None:
            return _Operation(template, query, None, {})
        # Multipart bodies are validated through their `payload_json`, i.e. as the JSON body.
        schema = body["content"]["application/json"]["schema"]
        return _Operation(template, query, self._root.evolve(schema=schema), schema)

    def _deref(self, schema: JSON) -> JSON:
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    # -- query -----------------------------------------------------------------------------

    def _query_problems(
        self, operation: _Operation, query: Mapping[str, str]
    ) -> Iterator[tuple[Location, str, str]]:
        for name, value in query.items():
            schema = operation.query.get(name)
            if schema is None:
                yield ("query", name), "UNKNOWN_QUERY_PARAMETER", "Not a parameter of this route"
            elif _types(schema) & {"boolean"}:
                if value not in _QUERY_BOOLEANS | _QUERY_BOOLEANS_DISCORD_PY:
                    yield ("query", name), "BOOLEAN_TYPE_COERCE", f"{value!r} is not a boolean"
            else:
                coerced: Any = value
                if _types(schema) & {"integer"} and value.lstrip("-").isdigit():
                    coerced = int(value)
                for error in self._root.evolve(schema=schema).iter_errors(coerced):
                    yield ("query", name), *_discord_code(error)

    # -- body ------------------------------------------------------------------------------

    def _body_verdict(self, method: str, operation: _Operation, instance: Any) -> list[Problem]:
        key = (method, operation.template, json.dumps(instance, sort_keys=True))
        if key in self._verdicts:
            self._verdicts.move_to_end(key)
        else:
            self._verdicts[key] = list(self._body_problems(operation, instance))
            if len(self._verdicts) > _REMEMBERED_VERDICTS:
                self._verdicts.popitem(last=False)
        return self._verdicts[key]

    def _body_problems(
        self, operation: _Operation, instance: Any
    ) -> Iterator[tuple[Location, str, str]]:
        assert operation.body is not None
        for error in operation.body.iter_errors(instance):
            for leaf in _leaf_errors(error):
                location: Location = ("body", *leaf.absolute_path)
                if leaf.validator == "required":
                    required: Any = leaf.validator_value
                    given: Any = leaf.instance
                    location = (*location, *[k for k in required if k not in given][:1])
                yield location, *_discord_code(leaf)
        for location in self._unknown_keys(instance, operation.body_schema, ("body",)):
            yield location, "UNKNOWN_FIELD", "No schema for this request names this key"

    def _unknown_keys(self, instance: Any, schema: JSON, at: Location) -> Iterator[Location]:
        """Keys of `instance` that no property of the schema's matching branches names."""
        if not isinstance(instance, dict | list):
            return
        schemas = list(self._expand(schema, instance))
        if isinstance(instance, dict):
            described = [s for s in schemas if "properties" in s]
            open_ended = not described or any(s.get("additionalProperties") for s in schemas)
            for key, value in instance.items():
                named = [s["properties"][key] for s in described if key in s["properties"]]
                if named:
                    yield from self._unknown_keys(value, {"allOf": named}, (*at, key))
                elif not open_ended:
                    yield (*at, key)
        elif isinstance(instance, list):
            items = [s["items"] for s in schemas if isinstance(s.get("items"), dict)]
            if items:
                for index, item in enumerate(instance):
                    yield from self._unknown_keys(item, {"allOf": items}, (*at, index))

    def _expand(self, schema: JSON, instance: Any) -> Iterator[JSON]:
        """The schema and every subschema that applies to `instance` through $ref, allOf and
        the anyOf/oneOf branches it matches (all branches when it matches none)."""
        yield schema
        if "$ref" in schema:
            yield from self._expand(self._deref(schema), instance)
        for branch in schema.get("allOf", []):
            yield from self._expand(branch, instance)
        if "if" in schema and "then" in schema and self._branch(schema["if"]).is_valid(instance):
            yield from self._expand(schema["then"], instance)
        for union in ("anyOf", "oneOf"):
            for branch in self._meant(schema.get(union, []), instance):
                yield from self._expand(branch, instance)

    def _meant(self, branches: list[JSON], instance: Any) -> list[JSON]:
        """The union branches meant for `instance`. Discord's unions are told apart by JSON type
        and by a `type` tag, so those decide first (fast); validation decides what is left."""
        kind = _json_type(instance)
        meant = []
        for branch in branches:
            resolved = self._deref(branch)
            declared = _types(resolved)
            if kind == "integer" and "number" in declared:
                declared.add("integer")
            if declared and kind not in declared:
                continue
            tags = union_tags(resolved)
            if tags is not None and isinstance(instance, dict) and instance.get("type") not in tags:
                continue
            meant.append(branch)
        if len(meant) <= 1:
            return meant or branches
        return [b for b in meant if self._branch(b).is_valid(instance)] or meant

    def _branch(self, schema: JSON) -> Validator:
        key = id(schema)  # branches live as long as the spec, so their ids are stable
        if key not in self._branch_validators:
            self._branch_validators[key] = self._root.evolve(schema=schema)
        return self._branch_validators[key]


@functools.cache
def default_spec_check() -> SpecCheck:
    """The checker for the stored spec, loaded and compiled once per process."""
    check = SpecCheck(json.loads(SPEC_FILE.read_text(encoding="utf-8")))
    # The spec is ~300,000 objects that live as long as the process. Left to the collector,
    # every full collection walks them all (a pause of a tenth of a second, again and again,
    # inside the event loop the bot shares with the fake); frozen, they are never walked.
    gc.collect()
    gc.freeze()
    return check


# -- discord.py's quirks -------------------------------------------------------------------


def _tolerate_discord_py(method: str, template: str, body: Any) -> Any:
    """`body` with TOLERATED_DISCORD_PY_QUIRKS rewritten the way the spec spells them."""
    recipient = body.get("recipient_id") if isinstance(body, dict) else None
    if (method, template) == _OPEN_DM and isinstance(recipient, int):
        return body | {"recipient_id": str(recipient)}
    if (method, template) in _COMMAND_LISTS and isinstance(body, list):
        return [_without_nsfw(command) for command in body]
    if (method, template) in _COMMANDS:
        return _without_nsfw(body)
    messages = list(_messages_in(method, template, body))
    if not messages:
        return body
    body = copy.deepcopy(body)
    for at, _ in _messages_in(method, template, body):
        message = _at(body, at)
        for attachment in _dicts(message.get("attachments")):
            if isinstance(attachment.get("id"), int):
                attachment["id"] = str(attachment["id"])
        mentions = message.get("allowed_mentions")
        if isinstance(mentions, dict) and isinstance(mentions.get("users"), list):
            mentions["users"] = [str(u) if isinstance(u, int) else u for u in mentions["users"]]
        for embed in _dicts(message.get("embeds")):
            if embed.get("flags") == 0:
                del embed["flags"]
        if message.get("tts") is False:
            del message["tts"]
    return body


def _without_nsfw(command: Any) -> Any:
    if isinstance(command, dict) and isinstance(command.get("nsfw"), bool):
        return {k: v for k, v in command.items() if k != "nsfw"}
    return command


# -- messages ------------------------------------------------------------------------------


def _messages_in(method: str, template: str, body: Any) -> Iterator[tuple[Location, JSON]]:
    """The message payloads in a request body, with where they sit."""
    if not isinstance(body, dict):
        return
    if (method, template) in _MESSAGE_AT_ROOT:
        yield (), body
    elif (
        (method, template) == _CALLBACK
        and body.get("type") in _CALLBACK_MESSAGE_TYPES
        and isinstance(body.get("data"), dict)
    ):
        yield ("data",), body["data"]


def _message_problems(
    message: JSON,
    at: Location,
    files: Sequence[UploadedFile],
    known_attachment_ids: Callable[[], set[int]],
) -> Iterator[tuple[Location, str, str]]:
    form = FormErrors()
    check_cross_field_rules(message, form, ("body", *at))
    yield from form.entries
    uploaded: set[int] = set()
    for upload in files:
        if upload.index is None:
            yield ("files",), "UNKNOWN_FILE_PART", f"File part {upload.field!r} is not files[n]"
        else:
            uploaded.add(upload.index)
    existing: set[int] | None = None
    for index, attachment in enumerate(_dicts(message.get("attachments"))):
        raw = str(attachment.get("id"))
        if not raw.isdigit() or int(raw) in uploaded:
            continue  # a malformed id is the schema's to report
        if existing is None:
            existing = known_attachment_ids()
        if int(raw) not in existing:
            yield (
                ("body", *at, "attachments", index, "id"),
                "ATTACHMENT_NOT_FOUND",
                f"Attachment id {raw} is neither an uploaded files[{raw}] nor an existing one",
            )


# -- helpers -------------------------------------------------------------------------------


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """The errors worth reporting: inside an anyOf/oneOf, those of the branch the instance was
    meant for (Discord's unions are told apart by `type`), else the union error itself."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [errors for errors in branches.values() if not any(map(_rules_out, errors))]
    if not meant:
        return [error]
    return [leaf for sub in min(meant, key=len) for leaf in _leaf_errors(sub)]


def _rules_out(error: ValidationError) -> bool:
    """True when the error only says the instance belongs to another branch of a union."""
    path = list(error.relative_path)
    return (not path and error.validator == "type") or (
        path == ["type"] and error.validator in ("enum", "const")
    )


def _discord_code(error: ValidationError) -> tuple[str, str]:
    """Discord's code and message for a schema error (its own wording where it has one)."""
    value = error.validator_value
    match error.validator:
        case "maxLength" | "maxItems":
            return "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length."
        case "minLength" | "minItems":
            return "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length."
        case "required":
            return "BASE_TYPE_REQUIRED", "This field is required"
        case "maximum":
            return "NUMBER_TYPE_MAX", f"Must be less than or equal to {value}."
        case "minimum":
            return "NUMBER_TYPE_MIN", f"Must be greater than or equal to {value}."
        case "enum" | "const":
            return "BASE_TYPE_CHOICES", f"Value must be one of {value}."
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return f"SCHEMA_{str(error.validator).upper()}", message


def _json_type(instance: Any) -> str:
    for kind, python_type in _JSON_TYPES:
        if isinstance(instance, python_type):
            return kind
    return "null"


_JSON_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("boolean", bool),  # before integer: a bool is an int in Python
    ("integer", int),
    ("number", float),
    ("string", str),
    ("array", list),
    ("object", dict),
)


def _types(schema: JSON) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _dicts(value: Any) -> list[JSON]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _at(body: JSON, at: Location) -> JSON:
    node: Any = body
    for key in at:
        node = node[key]
    result: JSON = node
    return result


class _PathIndex:
    """Concrete paths -> the spec's templates; literal segments win over `{parameters}`, so
    `/messages/@original` is not taken for `/messages/{message_id}`."""

    def __init__(self, templates: Sequence[str] | Mapping[str, Any]) -> None:
        self._root: dict[str, Any] = {}
        for template in templates:
            node = self._root
            for segment in template.strip("/").split("/"):
                key = "{}" if segment.startswith("{") else segment
                node = node.setdefault(key, {})
            node[""] = template

    def match(self, path: str) -> str | None:
        return self._match(self._root, path.split("?", 1)[0].strip("/").split("/"))

    def _match(self, node: dict[str, Any], segments: list[str]) -> str | None:
        if not segments:
            template: str | None = node.get("")
            return template
        head, rest = segments[0], segments[1:]
        for key in (head, "{}"):
            if key in node and key != "":
                found = self._match(node[key], rest)
                if found is not None:
                    return found
        return None
