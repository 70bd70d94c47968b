"""Where discord.py sends REST calls and opens its gateway (a proxy, or the fake Discord).

discord.py has no per-client setting for either, so both are process-wide:

- REST: every call, webhooks and interaction callbacks included, is built from
  `discord.http.Route.BASE` (default `https://discord.com/api/v10`).
- Gateway: a plain `Client`/`Bot`, and an `AutoShardedBot` with `shard_count` set, connect to
  `DiscordWebSocket.DEFAULT_GATEWAY`; an `AutoShardedBot` without `shard_count` first asks
  `GET /gateway/bot` and uses the URL it answers. `configure_endpoints` sets the default and,
  when a gateway URL is given, makes the `/gateway/bot` answer yield to it as well.

`configure_endpoints` may be called any number of times (tests start many bots in one process);
each call replaces the previous setting. `reset_endpoints()` restores Discord's own endpoints.
"""

from __future__ import annotations

from typing import Any

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route

DISCORD_REST_BASE = Route.BASE
DISCORD_GATEWAY = str(DiscordWebSocket.DEFAULT_GATEWAY)

_gateway_override: str | None = None
_original_get_bot_gateway = HTTPClient.get_bot_gateway


async def _get_bot_gateway(self: HTTPClient) -> tuple[int, str, Any]:
    """`HTTPClient.get_bot_gateway`, with the configured gateway URL winning over Discord's."""
    shards, url, limits = await _original_get_bot_gateway(self)
    return shards, _gateway_override or url, limits


def configure_endpoints(rest_base: str, gateway_url: str | None = None) -> None:
    """Point discord.py at `rest_base` (e.g. `http://127.0.0.1:8080/api/v10`) and the gateway.

    With `gateway_url=None` the gateway is Discord's default and an `AutoShardedBot` uses
    whatever `GET /gateway/bot` on `rest_base` answers.
    """
    global _gateway_override
    Route.BASE = rest_base.rstrip("/")
    _gateway_override = gateway_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url or DISCORD_GATEWAY)
    # Installed once; the wrapper reads the current override on every call.
    HTTPClient.get_bot_gateway = _get_bot_gateway  # type: ignore[method-assign]


def reset_endpoints() -> None:
    """Back to discord.com and Discord's gateway."""
    configure_endpoints(DISCORD_REST_BASE, None)
