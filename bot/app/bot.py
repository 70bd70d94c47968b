"""The Discord bot: one `AutoShardedBot` subclass that is the composition root.

`setup_hook` asks the composition root (`bot.app.composition`) for the shared services and for
this bot's parts (job lifecycle, generation, recovery, retention), loads the cogs as extensions
and syncs commands only when their signature changed.
`connect` first reads Discord's session-start budget and refuses to IDENTIFY below the margin
(`bot.app.session_budget`). `close()` stops running jobs and closes every session and pool
exactly once.
Each bot has its own metrics registry; with `METRICS_PORT` set it also serves /healthz, /readyz
and /metrics (`bot.observability`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import pkgutil
import signal
import sys
from collections.abc import Callable
from typing import Any, Final

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.app.composition import BotParts, Services, compose_bot, open_database
from bot.app.discord_metrics import discord_trace
from bot.app.endpoints import configure_endpoints
from bot.app.session_budget import (
    EXIT_SESSION_BUDGET_LOW,
    SessionBudget,
    SessionBudgetLow,
    may_start,
    start_line,
)
from bot.clock import utc_now
from bot.config import Settings
from bot.interactions.display import JobDisplays
from bot.interactions.generation import GenerationService
from bot.interactions.transport import acknowledge
from bot.interactions.transport.embeds import NO_MENTIONS
from bot.interactions.transport.replies import reply_ephemeral, report_error
from bot.jobs.recovery import JobRecovery, new_owner_id
from bot.observability.http import ObservabilityServer
from bot.observability.loop_lag import LoopLagMonitor
from bot.observability.metrics import BotMetrics
from bot.observability.upstream import meter_edits, meter_engine
from bot.storage.reliability.failures import describe_database_failure
from bot.storage.reliability.outage import OutageLog

log = logging.getLogger(__name__)

COGS_PACKAGE: Final = "cogs"


def cog_extensions(package: str = COGS_PACKAGE) -> tuple[str, ...]:
    """Every module of the cogs package, by name: adding a command is adding a cog module.

    Found without importing them (discord.py's extension loader imports each by name), so
    `bot/` never imports `cogs/`; modules starting with `_` are not extensions.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise RuntimeError(f"the {package!r} package is not installed with the bot")
    return tuple(
        f"{package}.{module.name}"
        for module in sorted(pkgutil.iter_modules(spec.submodule_search_locations),
                             key=lambda found: found.name)
        if not module.name.startswith("_") and not module.ispkg
    )

COMMAND_HASH_KEY = "command_tree_hash"
# /readyz asks the database for a trivial answer; a probe must not hang on a stalled server.
READINESS_DATABASE_TIMEOUT: Final = 2.0

# Connections to Discord's REST API at once (aiohttp's default pool size): ample for the
# acknowledgements, uploads (at most IMAGES_IN_FLIGHT) and progress edits of a large burst.
# (The fake Discord serves the gateway from the same host, where a shard takes one of them.)
DISCORD_HTTP_CONNECTIONS: Final = 100

# discord.py's names for permissions, as Discord's own settings screens call them.
_PERMISSION_NAMES = {"manage_guild": "Manage Server", "manage_messages": "Manage Messages"}


class ImagineBot(commands.AutoShardedBot):
    discord_http_connections: int = DISCORD_HTTP_CONNECTIONS

    def __init__(
        self,
        settings: Settings,
        *,
        services: Services | None = None,
        sync_on_start: bool = True,
        stop_on_sigterm: bool = False,
        **options: Any,
    ) -> None:
        metrics = BotMetrics()
        options.setdefault("http_trace", discord_trace(metrics))
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),  # slash commands need no privileged intents
            allowed_mentions=NO_MENTIONS,  # a prompt can never ping anyone
            help_command=None,
            **options,
        )
        self.settings = settings
        self.metrics = metrics
        self._observability: ObservabilityServer | None = None
        self._loop_lag: LoopLagMonitor | None = None
        self._undo_metering: Callable[[], None] | None = None
        self._shutting_down = False
        self._given_services = services
        self._services: Services | None = None
        self._parts: BotParts | None = None
        self.job_owner_id = new_owner_id()
        self.sync_on_start = sync_on_start
        self.stop_on_sigterm = stop_on_sigterm
        self.tree.error(self.on_app_command_error)

    async def login(self, token: str) -> None:
        # discord.py's default pool is unbounded: a burst of 1,000 interactions would open
        # 1,000 connections (1,000 TLS handshakes against the real Discord) for requests that
        # a bounded pool of kept-alive ones serves with less CPU and memory. Bounded per host:
        # each gateway shard's websocket holds a connection for its whole life (to the gateway's
        # host), so a total limit could starve REST in a process running many shards.
        if self.http.connector is discord.utils.MISSING:
            self.http.connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self.discord_http_connections)
        await super().login(token)

    async def connect(self, *, reconnect: bool = True) -> None:
        """Read Discord's session-start budget before the first IDENTIFY (see session_budget)."""
        await self.check_session_budget()
        await super().connect(reconnect=reconnect)

    async def check_session_budget(self) -> SessionBudget | None:
        """Raise `SessionBudgetLow` when this start's IDENTIFYs would leave too few.

        Asked of `GET /gateway/bot` through discord.py's own HTTP client (the same call it
        makes to learn the shard count); if Discord cannot answer, the start goes ahead as it
        did before this check, with a warning.
        """
        try:
            recommended, _, limit = await self.http.get_bot_gateway()
        except discord.GatewayNotFound:
            log.warning("could not read Discord's session-start budget; logging in unchecked")
            return None
        budget = SessionBudget.from_discord(limit)
        self.metrics.session_starts(budget.remaining, budget.total)
        shards = len(self.shard_ids) if self.shard_ids else (self.shard_count or recommended)
        reserve = self.settings.discord_min_session_starts
        if not may_start(budget, shards, reserve):
            raise SessionBudgetLow(budget, shards, reserve, utc_now())
        log.info(start_line(budget, shards))
        return budget

    @classmethod
    def of(cls, interaction: discord.Interaction) -> ImagineBot:
        """The bot behind an interaction, typed (buttons and cog overrides get an untyped one)."""
        client = interaction.client
        if not isinstance(client, cls):
            raise TypeError(f"expected an ImagineBot, got {type(client).__name__}")
        return client

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("services are created in setup_hook")
        return self._services

    @property
    def parts(self) -> BotParts:
        if self._parts is None:
            raise RuntimeError("the bot's parts are composed in setup_hook")
        return self._parts

    @property
    def generation(self) -> GenerationService:
        return self.parts.generation

    @property
    def displays(self) -> JobDisplays:
        return self.parts.displays

    @property
    def recovery(self) -> JobRecovery:
        return self.parts.recovery

    @property
    def database_outage(self) -> OutageLog | None:
        """The process's one outage log (None before `setup_hook`)."""
        return None if self._services is None else self._services.outage

    async def setup_hook(self) -> None:
        self._services = self._given_services or await Services.create(self.settings)
        self._parts = compose_bot(
            self._services, self.settings, self, metrics=self.metrics, owner_id=self.job_owner_id
        )
        await self._start_observability()
        if self.stop_on_sigterm:
            # Platforms that run the Procfile stop workers with SIGTERM: close as on Ctrl+C, so
            # running jobs tell their members the image follows after the restart (they stay
            # journaled), and every session is closed.
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGTERM, lambda: asyncio.create_task(self.close())
                )
        for extension in cog_extensions():
            await self.load_extension(extension)
        if self.sync_on_start:
            await self.sync_if_changed()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Database-backed commands are deferred if the database is slow to answer."""
        acknowledge.watch(interaction)

    async def on_ready(self) -> None:
        """Gateway ready: claim our shards, take back our unfinished jobs, settle the rest."""
        if self._parts is not None and not self._shutting_down:
            self._parts.recovery.ready()
            self._parts.retention.start()

    # ---- health and metrics ------------------------------------------------------------------

    async def _start_observability(self) -> None:
        services = self.services
        undo_engine = meter_engine(services.engine, self.metrics)
        undo_edits = meter_edits(services.edits, self.metrics)

        def undo_metering() -> None:
            undo_edits()
            undo_engine()

        self._undo_metering = undo_metering
        client = services.client
        self.metrics.track_client_attempts(lambda: client.stats)
        database = services.database
        database.start_monitoring()  # notices a SQLite file deleted or replaced under us
        self.metrics.track_database_usable(lambda: database.is_usable)
        self.metrics.track_in_flight(lambda: len(self.generation.jobs))
        if not self.settings.metrics_port:
            return
        self._loop_lag = LoopLagMonitor(self.metrics.loop_lag)
        self._loop_lag.start()
        self._observability = ObservabilityServer(
            self.metrics.render,
            self.readiness_problems,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
        )
        await self._observability.start()

    async def readiness_problems(self) -> list[str]:
        """Why this bot should not get traffic now (empty when ready): /readyz."""
        problems: list[str] = []
        if self._shutting_down or self.is_closed():
            problems.append("shutting down")
        if not self.is_ready():
            problems.append("gateway not connected")
        else:
            closed = sorted(i for i, shard in self.shards.items() if shard.is_closed())
            if closed:
                problems.append(f"gateway disconnected (shards {closed})")
        database = self._services.database if self._services is not None else None
        if database is not None:
            problem = await database.check(READINESS_DATABASE_TIMEOUT)
            if problem is not None:
                problems.append(problem)
        return problems

    async def _stop_observability(self) -> None:
        if self._loop_lag is not None:
            await self._loop_lag.stop()
        if self._observability is not None:
            await self._observability.stop()
            self._observability = None
        if self._undo_metering is not None:
            self._undo_metering()
            self._undo_metering = None

    # ---- command sync ------------------------------------------------------------------------

    def command_tree_hash(self) -> str:
        # `to_dict` carries `integration_types` and `contexts`: a change of where a command may
        # be installed or used re-syncs like any other change.
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def sync_if_changed(self) -> bool:
        """Sync globally only when the command tree changed since the last sync."""
        current = self.command_tree_hash()
        stored = await self.services.state.get(COMMAND_HASH_KEY)
        if stored == current:
            log.info("slash commands unchanged; not syncing")
            return False
        await self.tree.sync()
        await self.services.state.set(COMMAND_HASH_KEY, current)
        log.info("slash commands changed; synced globally")
        return True

    # ---- errors ------------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction[ImagineBot], error: app_commands.AppCommandError
    ) -> None:
        """Whatever a cog did not handle: a friendly line for the member, details in the log."""
        if interaction.extras.get("error_handled"):
            return  # a cog's own error handler already answered (e.g. invalid admin input)
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(error, app_commands.CheckFailure):
            text = "You don't have permission to use this command here."
            if isinstance(error, app_commands.MissingPermissions):
                needed = ", ".join(
                    _PERMISSION_NAMES.get(p, p.replace("_", " ").title())
                    for p in error.missing_permissions
                )
                text = f"You need the {needed} permission to use this command."
            try:
                await reply_ephemeral(interaction, text)
            except discord.HTTPException:
                log.warning("could not report a failed check to the member", exc_info=True)
            return
        name = interaction.command.qualified_name if interaction.command else "?"
        await report_error(interaction, original, f"/{name}")

    async def close(self) -> None:
        self._shutting_down = True  # /readyz says so from now on
        if self._parts is not None:
            await self._parts.retention.stop()
            await self._parts.recovery.stop()
            await self._parts.generation.close()  # running jobs stay journaled for the next start
        await super().close()
        await self._stop_observability()
        if self._services is not None and self._given_services is None:
            await self._services.close()


def run_bot(settings: Settings) -> int:
    """Run until stopped (Ctrl+C / SIGTERM). Returns the process exit code."""
    configure_endpoints(settings.discord_api_base_url, settings.discord_gateway_url)
    try:
        return asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        return 0


async def _serve(settings: Settings) -> int:
    """Open the database first, so a bad DATABASE_URL ends in one line before Discord login."""
    assert settings.discord_token is not None
    try:
        database = await open_database(settings)
    except Exception as error:  # one line naming the host and the cause; exit code 2
        print(
            describe_database_failure(
                settings.database_url.reveal(),
                error,
                connect_timeout=settings.database_connect_timeout,
            ),
            file=sys.stderr,
        )
        return 2
    services = await Services.create(settings, database=database)
    shards: dict[str, Any] = {}
    if settings.shard_count:
        shards["shard_count"] = settings.shard_count
        if settings.shard_ids:
            shards["shard_ids"] = list(settings.shard_ids)
    bot = ImagineBot(settings, services=services, stop_on_sigterm=True, **shards)
    try:
        async with bot:
            await bot.start(settings.discord_token.reveal())
    except discord.LoginFailure:
        print(
            "Discord rejected DISCORD_TOKEN. Copy the bot token again from the Developer "
            "Portal (Bot → Reset Token) into .env."
        )
        return 2
    except discord.PrivilegedIntentsRequired:
        print("Discord refused the requested intents; this bot needs no privileged intents.")
        return 2
    except SessionBudgetLow as low:
        print(low.line, file=sys.stderr)
        return EXIT_SESSION_BUDGET_LOW
    finally:
        await services.close()
    return 0


async def sync_commands(settings: Settings, guild_id: int | None = None) -> int:
    """`python -m bot sync [--guild ID]`: register the slash commands, then exit."""
    configure_endpoints(settings.discord_api_base_url, settings.discord_gateway_url)
    assert settings.discord_token is not None
    services = await Services.create(settings, with_novita=False)
    # A one-shot command must not take the running bot's metrics port.
    quiet = dataclasses.replace(settings, metrics_port=0)
    bot = ImagineBot(quiet, services=services, sync_on_start=False)
    try:
        async with bot:
            await bot.login(settings.discord_token.reveal())
            if guild_id is None:
                synced = await bot.tree.sync()
                await services.state.set(COMMAND_HASH_KEY, bot.command_tree_hash())
            else:
                guild = discord.Object(guild_id)
                bot.tree.copy_global_to(guild=guild)
                synced = await bot.tree.sync(guild=guild)
        where = f"guild {guild_id}" if guild_id else "all servers (may take up to an hour to show)"
        print(
            f"Synced {len(synced)} commands to {where}: " + ", ".join(f"/{c.name}" for c in synced)
        )
        return 0
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN.")
        return 2
    finally:
        await services.close()
