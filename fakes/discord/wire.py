"""The fake's HTTP plumbing shared by its route modules: Discord's JSON answers and how a
request's body is read (a JSON body, or multipart `payload_json` plus `files[n]` parts)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from fakes.discord.models import JSON, UploadedFile
from fakes.discord.state import FakeDiscordState, RateLimitInfo

API_PREFIX = "/api/v10"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (method, path under API_PREFIX, handler, needs `Authorization: Bot <token>`)
Route = tuple[str, str, Handler, bool]


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


def request_body(request: web.Request) -> RequestBody:
    """The body the middleware read (and recorded) before the handler ran."""
    body: RequestBody = request["body"]
    return body


def edit_headers(state: FakeDiscordState, info: RateLimitInfo) -> dict[str, str]:
    """The X-RateLimit-* headers of a successful edit, when the fake advertises them."""
    return info.headers() if state.config.advertise_rate_limits else {}
