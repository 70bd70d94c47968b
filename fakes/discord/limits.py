"""Discord's error shapes and message limits, as the fake enforces them.

`DiscordAPIError` carries the status and the JSON body Discord answers with
(`{"code", "message", "errors"}`); `check_message` applies the documented limits on content,
embeds, components and attachments and raises one 400/50035 listing every problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fakes.discord.models import FLAG_COMPONENTS_V2, JSON, UploadedFile

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_SELECT_OPTIONS = 25
MAX_COMPONENTS = 40  # in all, nested ones included
MAX_FILES = 10
MAX_AUTOCOMPLETE_CHOICES = 25
_EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
_URL_SCHEMES = ("http://", "https://", "attachment://")
_BUTTON, _ACTION_ROW = 2, 1
_SELECT_TYPES = {3, 5, 6, 7, 8}


class DiscordAPIError(Exception):
    """An error answer exactly as Discord shapes it."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: JSON | None = None,
        headers: dict[str, str] | None = None,
        body: JSON | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self._body = body

    def body(self) -> JSON:
        if self._body is not None:
            return self._body
        data: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        return data


def unknown_message() -> DiscordAPIError:
    return DiscordAPIError(404, 10008, "Unknown Message")


def unknown_channel() -> DiscordAPIError:
    return DiscordAPIError(404, 10003, "Unknown Channel")


def unknown_interaction() -> DiscordAPIError:
    return DiscordAPIError(404, 10062, "Unknown interaction")


def unknown_webhook() -> DiscordAPIError:
    return DiscordAPIError(404, 10015, "Unknown Webhook")


def invalid_webhook_token() -> DiscordAPIError:
    return DiscordAPIError(401, 50027, "Invalid Webhook Token")


def already_acknowledged() -> DiscordAPIError:
    return DiscordAPIError(400, 40060, "Interaction has already been acknowledged.")


def unauthorized() -> DiscordAPIError:
    return DiscordAPIError(401, 0, "401: Unauthorized")


def missing_access() -> DiscordAPIError:
    return DiscordAPIError(403, 50001, "Missing Access")


def missing_permissions() -> DiscordAPIError:
    return DiscordAPIError(403, 50013, "Missing Permissions")


def cannot_dm_user() -> DiscordAPIError:
    return DiscordAPIError(403, 50007, "Cannot send messages to this user")


def empty_message() -> DiscordAPIError:
    return DiscordAPIError(400, 50006, "Cannot send an empty message")


def entity_too_large() -> DiscordAPIError:
    return DiscordAPIError(413, 40005, "Request entity too large")


def not_found() -> DiscordAPIError:
    return DiscordAPIError(404, 0, "404: Not Found")


class FormErrors:
    """Collects field errors into Discord's nested `errors` object."""

    def __init__(self) -> None:
        self.errors: JSON = {}
        self.entries: list[tuple[tuple[str | int, ...], str, str]] = []  # (path, code, message)

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        self.entries.append((tuple(path), code, message))
        node = self.errors
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def required(self, path: Sequence[str | int]) -> None:
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required")

    def max_length(self, path: Sequence[str | int], limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def raise_if_any(self) -> None:
        if self.errors:
            raise DiscordAPIError(400, 50035, "Invalid Form Body", self.errors)


def invalid_form(path: Sequence[str | int], code: str, message: str) -> DiscordAPIError:
    form = FormErrors()
    form.add(path, code, message)
    return DiscordAPIError(400, 50035, "Invalid Form Body", form.errors)


def check_files(files: Sequence[UploadedFile], size_limit: int) -> None:
    """413/40005 when any file exceeds the upload limit (checked before the form)."""
    if any(len(f.data) > size_limit for f in files):
        raise entity_too_large()


def check_message(
    payload: JSON, files: Sequence[UploadedFile], prefix: Sequence[str | int] = ()
) -> None:
    """Raise 400/50035 listing every limit `payload` breaks (a message create or edit)."""
    form = FormErrors()
    path = tuple(prefix)
    content = payload.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        form.max_length((*path, "content"), MAX_CONTENT)
    embeds = payload.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        form.max_length((*path, "embeds"), MAX_EMBEDS)
    for index, embed in enumerate(embeds):
        _check_embed(embed, form, (*path, "embeds", index))
    check_cross_field_rules(payload, form, path)
    components = payload.get("components") or []
    if int(payload.get("flags") or 0) & FLAG_COMPONENTS_V2:
        _check_components_v2(components, form, path)
    else:
        _check_action_rows(components, form, (*path, "components"))
    if len(files) > MAX_FILES:
        form.max_length((*path, "files"), MAX_FILES)
    attachments = payload.get("attachments") or []
    if len(attachments) > MAX_FILES:
        form.max_length((*path, "attachments"), MAX_FILES)
    form.raise_if_any()


def check_cross_field_rules(
    payload: JSON, form: FormErrors, path: Sequence[str | int] = ()
) -> None:
    """The message rules Discord's OpenAPI spec cannot express (the spec check uses them too):
    6,000 characters across all embeds, 40 components counting nested ones, and no content or
    embeds with the Components V2 flag."""
    path = tuple(path)
    embeds = payload.get("embeds")
    if isinstance(embeds, list):
        total = sum(embed_text_length(e) for e in embeds if isinstance(e, dict))
        if total > MAX_EMBED_TOTAL:
            form.add(
                (*path, "embeds"),
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
            )
    components = payload.get("components")
    if isinstance(components, list) and count_components(components) > MAX_COMPONENTS:
        form.max_length((*path, "components"), MAX_COMPONENTS)
    flags = payload.get("flags")
    if (
        isinstance(flags, int)
        and flags & FLAG_COMPONENTS_V2
        and (payload.get("content") or payload.get("embeds"))
    ):
        form.add(
            (*path, "content"),
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used with MessageFlags.IS_COMPONENTS_V2",
        )


def embed_text_length(embed: JSON) -> int:
    """The characters one embed counts towards the 6,000 total: title, description, field
    names and values, footer text and author name."""
    size = sum(_embed_text(embed.get(key)) for key in ("title", "description"))
    for item in embed.get("fields") or []:
        if isinstance(item, dict):
            size += _embed_text(item.get("name")) + _embed_text(item.get("value"))
    for key, text_key in (("footer", "text"), ("author", "name")):
        part = embed.get(key)
        if isinstance(part, dict):
            size += _embed_text(part.get(text_key))
    return size


def count_components(components: Sequence[Any]) -> int:
    """Every component, nested ones (rows' and containers' children, accessories) included."""
    return sum(1 for _ in _nested_components(components, ()))


def _nested_components(
    components: Sequence[Any], path: tuple[str | int, ...]
) -> Iterator[tuple[JSON, tuple[str | int, ...]]]:
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        component_path = (*path, "components", index)
        yield component, component_path
        children = component.get("components")
        if isinstance(children, list):
            yield from _nested_components(children, component_path)
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory, (*component_path, "accessory")


def check_autocomplete(payload: JSON) -> None:
    choices = (payload.get("data") or {}).get("choices")
    if not isinstance(choices, list):
        raise invalid_form(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")
    if len(choices) > MAX_AUTOCOMPLETE_CHOICES:
        raise invalid_form(
            ("data", "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
        )


def _embed_text(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _check_embed(embed: JSON, form: FormErrors, path: tuple[str | int, ...]) -> None:
    """Check one embed's own limits (the 6,000 total is `check_cross_field_rules`)."""
    for key, limit in _EMBED_TEXT_LIMITS.items():
        length = _embed_text(embed.get(key))
        if length > limit:
            form.max_length((*path, key), limit)
    fields = embed.get("fields") or []
    if len(fields) > 25:
        form.max_length((*path, "fields"), 25)
    for index, item in enumerate(fields):
        for key, limit in (("name", 256), ("value", 1024)):
            length = _embed_text(item.get(key))
            if length == 0:
                form.required((*path, "fields", index, key))
            elif length > limit:
                form.max_length((*path, "fields", index, key), limit)
    for key, text_key, limit in (("footer", "text", 2048), ("author", "name", 256)):
        part = embed.get(key) or {}
        length = _embed_text(part.get(text_key))
        if length > limit:
            form.max_length((*path, key, text_key), limit)
    for key, url_key in (
        ("image", "url"),
        ("thumbnail", "url"),
        ("footer", "icon_url"),
        ("author", "icon_url"),
        ("author", "url"),
    ):
        url = (embed.get(key) or {}).get(url_key)
        if url is not None and not str(url).startswith(_URL_SCHEMES):
            form.add((*path, key, url_key), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
    url = embed.get("url")
    if url is not None and not str(url).startswith(("http://", "https://")):
        form.add((*path, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def _check_custom_id(component: JSON, form: FormErrors, path: tuple[str | int, ...]) -> None:
    custom_id = component.get("custom_id")
    if custom_id is not None and not 1 <= len(str(custom_id)) <= MAX_CUSTOM_ID:
        form.max_length((*path, "custom_id"), MAX_CUSTOM_ID)


def _check_button(button: JSON, form: FormErrors, path: tuple[str | int, ...]) -> None:
    style = button.get("style")
    if style == 5:
        if not button.get("url") or "custom_id" in button:
            form.add(path, "BUTTON_COMPONENT_INVALID_URL", "Link buttons need a url, no custom_id")
    elif style != 6 and not button.get("custom_id"):
        form.required((*path, "custom_id"))
    label = button.get("label")
    if isinstance(label, str) and len(label) > MAX_BUTTON_LABEL:
        form.max_length((*path, "label"), MAX_BUTTON_LABEL)
    _check_custom_id(button, form, path)


def _check_action_rows(rows: list[JSON], form: FormErrors, path: tuple[str | int, ...]) -> None:
    if len(rows) > MAX_ACTION_ROWS:
        form.max_length(path, MAX_ACTION_ROWS)
    seen: set[str] = set()
    for row_index, row in enumerate(rows):
        row_path = (*path, row_index)
        if row.get("type") != _ACTION_ROW:
            form.add((*row_path, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be 1.')
            continue
        children = row.get("components") or []
        if not children:
            form.add(
                (*row_path, "components"), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
            )
        selects = [c for c in children if c.get("type") in _SELECT_TYPES]
        if selects and len(children) > 1:
            form.add(
                (*row_path, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        elif len(children) > MAX_ROW_BUTTONS:
            form.max_length((*row_path, "components"), MAX_ROW_BUTTONS)
        for index, child in enumerate(children):
            child_path = (*row_path, "components", index)
            if child.get("type") == _BUTTON:
                _check_button(child, form, child_path)
            else:
                _check_custom_id(child, form, child_path)
                options = child.get("options")
                if isinstance(options, list) and len(options) > MAX_SELECT_OPTIONS:
                    form.max_length((*child_path, "options"), MAX_SELECT_OPTIONS)
            custom_id = child.get("custom_id")
            if custom_id is not None:
                if custom_id in seen:
                    form.add(
                        (*child_path, "custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)


def _check_components_v2(
    components: list[JSON], form: FormErrors, path: tuple[str | int, ...]
) -> None:
    for component, component_path in _nested_components(components, path):
        if component.get("type") == _BUTTON:
            _check_button(component, form, component_path)
        else:
            _check_custom_id(component, form, component_path)
