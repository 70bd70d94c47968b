"""The Dockerfile and docker-compose.yml, checked by shape (no Docker daemon in CI)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_WORDS = re.compile(r"TOKEN|API_KEY|PASSWORD|SECRET", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_dockerfile_is_slim_non_root_and_runs_the_bot() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert [k for k, _ in steps].index("USER") < [k for k, _ in steps].index("CMD")
    (cmd,) = [args for keyword, args in steps if keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "bot"]
    assert any(k == "RUN" and "pip install ." in args for k, args in steps)
    assert ("VOLUME", '["/app/data"]') in steps
    assert ("WORKDIR", "/app") in steps  # so the default sqlite URL (data/...) is on the volume


def test_dockerfile_bakes_in_no_secrets() -> None:
    for keyword, args in instructions():
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not SECRET_WORDS.search(args), (keyword, args)
        if keyword in {"COPY", "ADD"}:
            assert ".env" not in args.split() and "." not in args.split()[:-1], args
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and "data/" in ignored


def test_healthcheck_asks_healthz_only_when_metrics_are_on() -> None:
    (check,) = [args for keyword, args in instructions() if keyword == "HEALTHCHECK"]
    assert "/healthz" in check and "METRICS_PORT" in check


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_the_bot_against_a_healthy_postgres() -> None:
    services = compose()["services"]
    postgres, bot = services["postgres"], services["bot"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert bot["build"] == "."
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = bot["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
    assert bot["env_file"] == ".env"


def test_compose_takes_secrets_from_env_only() -> None:
    services = compose()["services"]
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET_WORDS.search(name):
                assert str(value).startswith("${"), name
            assert "DISCORD_TOKEN" not in name and "NOVITA_API_KEY" not in name
    url = services["bot"]["environment"]["DATABASE_URL"]
    assert ":${POSTGRES_PASSWORD}@" in url


def test_compose_restarts_the_bot_and_says_how_its_token_stays_safe() -> None:
    """Restarted after crashes and reboots; a crash loop cannot spend Discord's session starts
    because the bot refuses to IDENTIFY below its reserve (exit 75), which the file explains."""
    from bot.app.session_budget import EXIT_SESSION_BUDGET_LOW

    bot = compose()["services"]["bot"]
    assert bot["restart"] == "unless-stopped" and "deploy" not in bot
    text = (ROOT / "docker-compose.yml").read_text()
    assert f"Exit code {EXIT_SESSION_BUDGET_LOW}" in text  # what "do not restart now" looks like
