"""Settings: read once from the environment and `.env`, typed, validated, every problem reported.

One table (`FIELDS`) describes every setting: its environment name, type, default and a short
description. The parser, `.env.example` and the README's configuration table all follow it, and a
test keeps the three in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from dotenv import dotenv_values
from sqlalchemy import make_url

# Money is counted in micro-dollars (`bot.usage.MICRO`; settings import nothing of `bot`):
# a positive amount below one would round to 0, which means "no cap" or "free".
SMALLEST_USD: Final = 0.000_001

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///data/imagine.db"
ENV_EXAMPLE_HINT: Final = "copy .env.example to .env and fill it in (see README, Configuration)"


class Secret:
    """A string that never shows itself in `repr`, `str`, logs or exception text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SecretUrl(Secret):
    """A database URL whose password never shows: `repr`, `str`, logs and errors see the URL
    with the password masked (`reveal()` gives it whole, for the driver only)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SecretUrl({masked_url(self._value)!r})"

    def __str__(self) -> str:
        return masked_url(self._value)


def masked_url(url: str) -> str:
    """The URL as it may be shown: password (and any `password` query value) masked; a URL
    that does not parse is hidden whole, since nobody can tell where its password is."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises several types for a malformed URL
        return "********"
    hidden = {key: "masked" for key in parsed.query if "pass" in key.lower()}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


OFFLINE_HINT: Final = (
    "To try everything offline first, with no keys: python -m bot demo "
    "(a local fake Discord and a mock Novita)."
)


class SettingsError(Exception):
    """Raised with *every* problem found, so the user can fix them all in one go."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def render(self, *, offline_hint: bool = False) -> str:
        """The message for the terminal; `offline_hint` adds how to try the bot with no keys
        (shown when there is no `.env` yet, i.e. on a first run)."""
        lines = ["imagine-bot cannot start; these settings need attention:"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append(f"Set them in the environment or in a .env file: {ENV_EXAMPLE_HINT}.")
        if offline_hint:
            lines.append(OFFLINE_HINT)
        return "\n".join(lines)


@dataclass(frozen=True)
class Field:
    env: str
    attr: str
    # "secret", "secret_url", "str", "url", "int", "int_list", "float", "usd" (a float that is
    # 0 or at least SMALLEST_USD), "bool", "level", "poll_strategy", "host_list",
    # "choice" (one of `choices`)
    kind: str
    default: Any
    help: str
    section: str
    minimum: float | None = None
    maximum: float | None = None
    example: str | None = None  # what .env.example shows (defaults to the default)
    choices: tuple[str, ...] = ()  # for kind "choice"


_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SECRET_KINDS: Final = ("secret", "secret_url")

FIELDS: Final[tuple[Field, ...]] = (
    # --- secrets -------------------------------------------------------------------------------
    Field("DISCORD_TOKEN", "discord_token", "secret", None,
          "Bot token from the Discord Developer Portal (Bot → Reset Token). "
          "Required to run the bot.",
          "Secrets", example=""),
    Field("NOVITA_API_KEY", "novita_api_key", "secret", None,
          "Novita AI API key (novita.ai → Key Management). Required to generate images.",
          "Secrets", example=""),
    # --- endpoints -----------------------------------------------------------------------------
    Field("NOVITA_BASE_URL", "novita_base_url", "url", "https://api.novita.ai",
          "Novita API base URL.", "Endpoints"),
    Field("DISCORD_API_BASE_URL", "discord_api_base_url", "url", "https://discord.com/api/v10",
          "Discord REST base (point at a REST proxy such as nirn-proxy, or a local fake).",
          "Endpoints"),
    Field("DISCORD_GATEWAY_URL", "discord_gateway_url", "url", None,
          "Discord gateway websocket URL; empty means discord.py's own default.", "Endpoints",
          example=""),
    Field("DATABASE_URL", "database_url", "secret_url", SecretUrl(DEFAULT_DATABASE_URL),
          "SQLAlchemy URL: SQLite file (default) or postgresql+asyncpg://user:pass@host/db "
          "for several processes.", "Endpoints"),
    Field("DATABASE_CONNECT_TIMEOUT_SECONDS", "database_connect_timeout", "float", 5.0,
          "Give up connecting to PostgreSQL after this long (at start-up: exit with one line "
          "saying why).", "Endpoints", minimum=0.1, maximum=120),
    Field("DATABASE_COMMAND_TIMEOUT_SECONDS", "database_command_timeout", "float", 10.0,
          "Give up on one PostgreSQL statement after this long.", "Endpoints",
          minimum=0.1, maximum=600),
    Field("SHARD_COUNT", "shard_count", "int", 0,
          "Total shards across all processes; 0 = ask Discord and run them all here.",
          "Endpoints", minimum=0, maximum=100000),
    Field("SHARD_IDS", "shard_ids", "int_list", None,
          "Comma-separated shard ids this process runs (e.g. 0,1), with SHARD_COUNT set; "
          "empty = all of them.", "Endpoints", example=""),
    # 20 (2% of the usual 1,000): what a running bot needs for a day of its own re-IDENTIFYs
    # (sessions Discord will not resume), across the few shards of a small bot, and what the
    # other processes sharing the token need; a refused start spends none.
    Field("DISCORD_MIN_SESSION_STARTS", "discord_min_session_starts", "int", 20,
          "Session starts (gateway IDENTIFYs, about 1,000 a day per bot) to keep unspent: below "
          "this many after this start's shards, the bot refuses to log in (exit code 75) "
          "instead of risking Discord resetting its token.", "Endpoints",
          minimum=0, maximum=100000),
    Field("LOG_LEVEL", "log_level", "level", "INFO",
          "Level for the bot's own loggers (the discord logger never goes below INFO).",
          "Endpoints"),
    Field("METRICS_PORT", "metrics_port", "int", 0,
          "Serve /healthz, /readyz and Prometheus /metrics on this port. 0 = off.",
          "Endpoints", minimum=0, maximum=65535),
    Field("METRICS_HOST", "metrics_host", "str", "127.0.0.1",
          "Address the metrics server listens on (0.0.0.0 to let other hosts scrape it).",
          "Endpoints"),
    # --- job engine ----------------------------------------------------------------------------
    Field("POLL_MIN_INTERVAL_SECONDS", "poll_min_interval", "float", 0.5,
          "Shortest gap between two polls of one task.", "Jobs", minimum=0.01, maximum=60),
    Field("POLL_MAX_INTERVAL_SECONDS", "poll_max_interval", "float", 10.0,
          "Longest gap between two polls of one task (early on, while it cannot be ready yet; "
          "once it is overdue, gaps stay under 5 s).", "Jobs", minimum=0.05, maximum=300),
    Field("POLL_STRATEGY", "poll_strategy", "poll_strategy", "adaptive",
          "For benchmarks/comparison only: adaptive (the default), fixed:<seconds> or "
          "backoff:<initial>:<factor>:<cap> (e.g. fixed:0.5, backoff:2:1.3:5).", "Jobs"),
    Field("JOB_DEADLINE_SECONDS", "job_deadline", "float", 300.0,
          "Give up on a job after this long (submit to downloaded image).", "Jobs",
          minimum=1, maximum=3600),
    Field("NOVITA_REQUEST_TIMEOUT_SECONDS", "request_timeout", "float", 60.0,
          "Timeout for one HTTP request to Novita (Novita advises above 60 s on submit).", "Jobs",
          minimum=0.5, maximum=600),
    Field("MAX_IMAGE_DOWNLOAD_MB", "max_download_mb", "float", 25.0,
          "Refuse to download a generated image larger than this.", "Jobs",
          minimum=0.1, maximum=500),
    Field("IMAGE_READ_TIMEOUT_SECONDS", "image_read_timeout", "float", 15.0,
          "Give up on an image download when the host sends nothing for this long.", "Jobs",
          minimum=0.1, maximum=600),
    Field("IMAGE_MIN_BYTES_PER_SECOND", "image_min_bytes_per_second", "int", 32768,
          "Give up on an image download slower than this on average (judged after its first "
          "5 s). 0 = no minimum.", "Jobs", minimum=0, maximum=1_000_000_000),
    Field("TRUSTED_IMAGE_HOSTS", "trusted_image_hosts", "host_list", (),
          "Comma-separated host:port image hosts exempt from the public-address check "
          "(e.g. the local mock Novita, 127.0.0.1:8089). Leave empty in production.", "Jobs",
          example=""),
    Field("NOVITA_EDIT_IMAGE_MODE", "novita_edit_image_mode", "choice", "auto",
          "How Edit sends the image to Novita: auto (its public URL, then once as base64 data "
          "if Novita cannot read it), url or base64 (only that form).", "Jobs",
          choices=("auto", "url", "base64")),
    Field("NOVITA_MAX_SUBMITS_PER_MINUTE", "max_submits_per_minute", "int", 20,
          "Bot-wide cap on task submissions per minute (Novita limits images per minute "
          "per key); bursts wait locally. 0 = no limit.", "Jobs", minimum=0, maximum=10000),
    Field("PROGRESS_EDIT_INTERVAL_SECONDS", "progress_edit_interval", "float", 2.0,
          "Minimum gap between two edits of one progress message.", "Jobs",
          minimum=0.0, maximum=60),
    Field("PROGRESS_EDITS_PER_SECOND", "progress_edits_per_second", "float", 25.0,
          "Bot-wide cap on progress edits (results are never held back); with many jobs at "
          "once, progress updates thin out first. 0 = no cap.", "Jobs",
          minimum=0.0, maximum=1000),
    Field("JOB_OWNER_HEARTBEAT_SECONDS", "job_owner_heartbeat", "float", 15.0,
          "How often a process renews its claim on its shards; one silent for three beats "
          "is presumed dead, and its unfinished jobs go to whoever runs its shards next.",
          "Jobs", minimum=0.05, maximum=3600),
    Field("RETENTION_DAYS", "retention_days", "int", 90,
          "Ledger rows (and their prompts) older than this are rolled up into daily totals, "
          "which usage and spend still count. 0 = keep every row.", "Limits",
          minimum=0, maximum=36500),
    # --- limits (0 = unlimited everywhere; each server can override its own) -------------------
    Field("USER_GENERATIONS_PER_WINDOW", "user_generations_per_window", "int", 5,
          "Images one member may start per rolling window. 0 = unlimited.", "Limits",
          minimum=0, maximum=100000),
    Field("USER_WINDOW_MINUTES", "user_window_minutes", "int", 10,
          "Length of that rolling window, in minutes.", "Limits", minimum=1, maximum=10080),
    Field("USER_MAX_CONCURRENT_JOBS", "user_max_concurrent_jobs", "int", 2,
          "Jobs one member may have running or queued at once. 0 = unlimited.", "Limits",
          minimum=0, maximum=1000),
    Field("USER_DAILY_QUOTA", "user_daily_quota", "int", 25,
          "Images one member may make per day; resets at 00:00 UTC. 0 = unlimited.", "Limits",
          minimum=0, maximum=1000000),
    Field("GUILD_MAX_CONCURRENT_JOBS", "guild_max_concurrent_jobs", "int", 0,
          "Jobs one server may have running or queued at once. 0 = unlimited.", "Limits",
          minimum=0, maximum=100000),
    Field("GUILD_DAILY_CAP", "guild_daily_cap", "int", 0,
          "Images one server may make per day (00:00 UTC reset). 0 = unlimited.", "Limits",
          minimum=0, maximum=10000000),
    Field("MAX_CONCURRENT_UPSTREAM_TASKS", "max_concurrent_upstream_tasks", "int", 8,
          "Novita tasks this process runs at once; more wait in a queue that takes turns "
          "between members. 0 = unlimited.", "Limits", minimum=0, maximum=10000),
    Field("PRICE_PER_IMAGE_USD", "price_per_image_usd", "usd", 0.02,
          "Estimated price of one image, for spend statistics and caps (check your Novita "
          "billing page).", "Limits", minimum=0, maximum=100),
    Field("PRICE_PER_EDIT_USD", "price_per_edit_usd", "usd", 0.02,
          "Estimated price of one edit (Qwen-Image-Edit), for spend statistics and caps; "
          "Novita publishes no price, so this is a guess: check your billing page.", "Limits",
          minimum=0, maximum=100),
    Field("GUILD_DAILY_SPEND_CAP_USD", "guild_daily_spend_cap_usd", "usd", 0.0,
          "Estimated spend per server per day (00:00 UTC reset) after which new jobs are "
          "refused. 0 = no cap.", "Limits", minimum=0, maximum=1000000),
    Field("BOT_DAILY_SPEND_CAP_USD", "bot_daily_spend_cap_usd", "usd", 0.0,
          "Estimated spend of the whole bot per day (00:00 UTC reset) after which new jobs "
          "are refused. 0 = no cap.", "Limits", minimum=0, maximum=1000000),
    # --- ceilings over every server's own limits (for bots offered to many servers) ------------
    Field("MAX_USER_DAILY_QUOTA", "max_user_daily_quota", "int", 0,
          "For bots offered to many servers: the most images one member may make per day in "
          "one server, whatever its moderators, roles and exemptions say (USER_DAILY_QUOTA and "
          "USER_INSTALL_DAILY_CAP are held to it too). 0 = no ceiling.", "Limits",
          minimum=0, maximum=1000000),
    Field("MAX_GUILD_DAILY_CAP", "max_guild_daily_cap", "int", 0,
          "For bots offered to many servers: the most images one server may make per day, "
          "whatever its moderators set (GUILD_DAILY_CAP is held to it too). 0 = no ceiling.",
          "Limits", minimum=0, maximum=10000000),
    Field("MAX_GUILD_DAILY_SPEND_CAP_USD", "max_guild_daily_spend_cap_usd", "usd", 0.0,
          "For bots offered to many servers: the most estimated spend one server may reach per "
          "day, whatever its moderators set (GUILD_DAILY_SPEND_CAP_USD is held to it too). "
          "0 = no ceiling.", "Limits", minimum=0, maximum=1000000),
    # --- the user-installable app --------------------------------------------------------------
    Field("USER_INSTALLS_ENABLED", "user_installs_enabled", "bool", True,
          "Whether members may use the bot as a user-installed app (in DMs between members, "
          "group DMs and servers the bot is not in; a member's DM with the bot is always "
          "allowed).", "User installs", example="true"),
    Field("USER_INSTALL_DAILY_CAP", "user_install_daily_cap", "int", 0,
          "Images one member may make per day through the user-installed app where the bot "
          "is not a member (00:00 UTC reset). 0 = the same as USER_DAILY_QUOTA.",
          "User installs",
          minimum=0, maximum=1000000),
    Field("BLOCKED_WORDS", "blocked_words", "str", "",
          "Comma-separated words and phrases refused wherever no server's own rules apply "
          "(user installs in other servers, DMs, group DMs). Empty = none.", "User installs",
          example=""),
)


@dataclass(frozen=True)
class Settings:
    discord_token: Secret | None = None
    novita_api_key: Secret | None = None
    novita_base_url: str = "https://api.novita.ai"
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None
    database_url: SecretUrl = field(default_factory=lambda: SecretUrl(DEFAULT_DATABASE_URL))
    database_connect_timeout: float = 5.0
    database_command_timeout: float = 10.0
    shard_count: int = 0
    shard_ids: tuple[int, ...] | None = None
    discord_min_session_starts: int = 20
    log_level: str = "INFO"
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    poll_min_interval: float = 0.5
    poll_max_interval: float = 10.0
    poll_strategy: str = "adaptive"
    job_deadline: float = 300.0
    request_timeout: float = 60.0
    max_download_mb: float = 25.0
    image_read_timeout: float = 15.0
    image_min_bytes_per_second: int = 32768
    trusted_image_hosts: tuple[str, ...] = ()
    novita_edit_image_mode: str = "auto"
    max_submits_per_minute: int = 20
    progress_edit_interval: float = 2.0
    progress_edits_per_second: float = 25.0
    job_owner_heartbeat: float = 15.0
    retention_days: int = 90
    user_generations_per_window: int = 5
    user_window_minutes: int = 10
    user_max_concurrent_jobs: int = 2
    user_daily_quota: int = 25
    guild_max_concurrent_jobs: int = 0
    guild_daily_cap: int = 0
    max_concurrent_upstream_tasks: int = 8
    price_per_image_usd: float = 0.02
    price_per_edit_usd: float = 0.02
    guild_daily_spend_cap_usd: float = 0.0
    bot_daily_spend_cap_usd: float = 0.0
    max_user_daily_quota: int = 0
    max_guild_daily_cap: int = 0
    max_guild_daily_spend_cap_usd: float = 0.0
    user_installs_enabled: bool = True
    user_install_daily_cap: int = 0
    blocked_words: str = ""
    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def blocked_word_list(self) -> tuple[str, ...]:
        """BLOCKED_WORDS split on commas, blanks dropped."""
        return tuple(w.strip() for w in self.blocked_words.split(",") if w.strip())

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)

    def require(self, *attrs: str) -> None:
        """Raise `SettingsError` listing every named setting that is missing."""
        by_attr = {f.attr: f for f in FIELDS}
        problems = [
            f"{by_attr[attr].env} is not set: {by_attr[attr].help}"
            for attr in attrs
            if not getattr(self, attr)
        ]
        if problems:
            raise SettingsError(problems)


def _parse(field_: Field, raw: str) -> Any:
    kind = field_.kind
    if kind == "secret":
        return Secret(raw)
    if kind == "secret_url":
        return SecretUrl(raw)
    if kind == "url":
        if not raw.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http://, https://, ws:// or wss://")
        return raw.rstrip("/")
    if kind == "level":
        level = raw.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level
    if kind == "poll_strategy":
        return parse_poll_strategy(raw)
    if kind == "int_list":
        try:
            return tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
        except ValueError:
            raise ValueError("must be comma-separated whole numbers, e.g. 0,1") from None
    if kind == "choice":
        lowered = raw.lower()
        if lowered not in field_.choices:
            raise ValueError(f"must be one of {', '.join(field_.choices)}")
        return lowered
    if kind == "host_list":
        return parse_trusted_hosts(raw)
    if kind == "bool":
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError("must be true or false")
    if kind in {"int", "float", "usd"}:
        number: float
        try:
            number = int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"must be a{'n integer' if kind == 'int' else ' number'}") from None
        if number != number:  # NaN passes every comparison, so it would pass every bound
            raise ValueError("must be a number")
        if field_.minimum is not None and number < field_.minimum:
            raise ValueError(f"must be at least {field_.minimum:g}")
        if field_.maximum is not None and number > field_.maximum:
            raise ValueError(f"must be at most {field_.maximum:g}")
        if kind == "usd" and 0 < number < SMALLEST_USD:
            raise ValueError(
                f"is below the smallest amount counted ({SMALLEST_USD:.6f} USD, one "
                f"micro-dollar) and would round to 0: set 0 or at least {SMALLEST_USD:.6f}"
            )
        return number
    return raw


# ---- the two settings with a grammar of their own -----------------------------------------------
# Parsed here, where settings are parsed; `bot.novita.download_guard` and
# `bot.jobs.polling.strategies` take the parsed values.

ADAPTIVE: Final = "adaptive"
_NUMBER: Final = r"(\d+(?:\.\d+)?)"
_FIXED: Final = re.compile(rf"^fixed:{_NUMBER}$")
_BACKOFF: Final = re.compile(rf"^backoff:{_NUMBER}:{_NUMBER}:{_NUMBER}$")


def parse_poll_strategy(spec: str) -> str:
    """POLL_STRATEGY normalised, or ValueError saying what is accepted.

    Spellings: `adaptive`, `fixed:<seconds>`, `backoff:<initial>:<factor>:<cap>`.
    """
    text = spec.strip().lower()
    if text == ADAPTIVE:
        return text
    fixed, backoff = _FIXED.match(text), _BACKOFF.match(text)
    if fixed and float(fixed.group(1)) > 0:
        return text
    if backoff:
        initial, factor, cap = (float(backoff.group(i)) for i in (1, 2, 3))
        if initial > 0 and factor >= 1 and cap >= initial:
            return text
    raise ValueError(
        "must be adaptive, fixed:<seconds> or backoff:<initial>:<factor>:<cap> "
        "(e.g. fixed:0.5, backoff:2:1.3:5)"
    )


def parse_trusted_hosts(text: str) -> tuple[str, ...]:
    """`"127.0.0.1:8089, [::1]:80"` → normalised `host:port` entries; `ValueError` if malformed."""
    entries: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        host, port = _split_host_port(part)
        entries.append(trusted_host_entry(host, port))
    return tuple(entries)


def bare_host(host: str) -> str:
    """A host as trusted hosts compare it: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def trusted_host_entry(host: str, port: int) -> str:
    """The one form a trusted `host:port` is stored and compared in (IPv6 in brackets)."""
    host = bare_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_host_port(text: str) -> tuple[str, int]:
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not host:port (for example 127.0.0.1:8089)")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{text!r}: write IPv6 hosts in brackets, e.g. [::1]:8089")
    return bare_host(host), int(port_text)


def settings_from_mapping(
    env: Mapping[str, str], fields: Iterable[Field] = FIELDS
) -> Settings:
    """Build `Settings` from a plain mapping; raises `SettingsError` listing every problem."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field_ in fields:
        raw = env.get(field_.env)
        if raw is None or raw.strip() == "":
            continue  # keep the dataclass default
        try:
            values[field_.attr] = _parse(field_, raw.strip())
        except ValueError as exc:
            shown = "(hidden)" if field_.kind in _SECRET_KINDS else repr(raw.strip())
            problems.append(f"{field_.env}={shown} {exc}")
    if values.get("poll_min_interval", 0.5) > values.get("poll_max_interval", 10.0):
        problems.append("POLL_MIN_INTERVAL_SECONDS must not exceed POLL_MAX_INTERVAL_SECONDS")
    shard_ids = values.get("shard_ids")
    shard_count = values.get("shard_count", 0)
    if shard_ids and not shard_count:
        problems.append("SHARD_IDS needs SHARD_COUNT (the total across all processes)")
    elif shard_ids and any(not 0 <= i < shard_count for i in shard_ids):
        problems.append(f"SHARD_IDS must each be between 0 and SHARD_COUNT-1 ({shard_count - 1})")
    if problems:
        raise SettingsError(problems)
    known = {f.env for f in fields}
    return Settings(**values, extra={k: v for k, v in env.items() if k not in known})


def load_settings(
    env_file: str | os.PathLike[str] | None = ".env",
    environ: Mapping[str, str] | None = None,
    reader: Callable[[Path], Mapping[str, str | None]] = dotenv_values,
) -> Settings:
    """Read `.env` (if present) under the process environment, which wins, then validate."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in reader(Path(env_file)).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return settings_from_mapping(merged)


def render_env_example() -> str:
    """The text of `.env.example`, generated from `FIELDS` (a test checks the file matches)."""
    out = [
        "# imagine-bot settings. Copy to .env and fill in the two secrets; everything else has",
        "# a working default. The process environment overrides this file.",
    ]
    section = None
    for f in FIELDS:
        if f.section != section:
            section = f.section
            out += ["", f"# --- {section} ---"]
        shown = f.example if f.example is not None else ("" if f.default is None else f.default)
        out.append(f"# {f.help}")
        out.append(f"{f.env}={shown}")
    return "\n".join(out) + "\n"


def render_config_table() -> str:
    """The README's configuration table, generated from `FIELDS`."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for f in FIELDS:
        if f.kind == "secret":
            default = "**required**"
        elif f.default is None:
            default = "(discord.py's)"
        elif f.default == ():
            default = "(empty)"
        else:
            default = f"`{str(f.default).lower() if isinstance(f.default, bool) else f.default}`"
        rows.append(f"| `{f.env}` | {default} | {f.help} |")
    return "\n".join(rows)


def sync_docs(root: Path) -> None:
    """Rewrite `.env.example` and the README table from `FIELDS` (`python -m bot.config`)."""
    (root / ".env.example").write_text(render_env_example())
    readme = root / "README.md"
    text = readme.read_text()
    start, end = "<!-- config-table:start -->", "<!-- config-table:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{render_config_table()}\n{end}{tail}")


if __name__ == "__main__":
    sync_docs(Path(__file__).resolve().parent.parent)
