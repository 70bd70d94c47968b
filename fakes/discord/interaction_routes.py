"""The fake's interaction routes: the callback that acknowledges an interaction, and the
interaction webhooks (followups; get, edit and delete the original or a followup message)."""

from __future__ import annotations

from aiohttp import web

from fakes.discord.limits import (
    check_autocomplete,
    check_files,
    check_message,
    invalid_form,
    unknown_message,
    unknown_webhook,
)
from fakes.discord.models import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
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
    FakeMessage,
)
from fakes.discord.state import FakeDiscordState, FakeInteraction, interaction_message_type
from fakes.discord.wire import (
    Route,
    edit_headers,
    json_response,
    no_content,
    request_body,
    route_template,
)

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
_WEBHOOK = "/webhooks/{application_id}/{token}"


class InteractionRoutes:
    """Interaction callbacks and webhooks; they need no bot token (the interaction's suffices)."""

    def __init__(self, state: FakeDiscordState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        routes: list[Route] = [
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback, False),
            ("POST", _WEBHOOK, self.followup, False),
        ]
        for message in ("@original", "{message_id}"):
            path = f"{_WEBHOOK}/messages/{message}"
            routes += [
                ("GET", path, self.get_webhook_message, False),
                ("PATCH", path, self.edit_webhook_message, False),
                ("DELETE", path, self.delete_webhook_message, False),
            ]
        return routes

    def _message(self, message: FakeMessage) -> JSON:
        return self.state.message_payload(message)

    async def callback(self, request: web.Request) -> web.Response:
        state = self.state
        interaction = state.interaction_for_callback(
            int(request.match_info["interaction_id"]), request.match_info["token"]
        )
        body = request_body(request)
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
        body = request_body(request)
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
        body = request_body(request)
        check_files(body.files, interaction.attachment_size_limit)
        check_message(body.payload, body.files)
        self.state.edit_message(message, body.payload, body.files, route_template(request))
        if message.id == interaction.original_message_id:
            interaction.deferred_pending = False
        return json_response(self._message(message), headers=edit_headers(self.state, info))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_target(request, interaction)
        message.deleted_at = self.state.clock()
        return no_content()


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
