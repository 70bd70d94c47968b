from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import (
    FIELDS,
    Secret,
    SecretUrl,
    Settings,
    SettingsError,
    load_settings,
    parse_poll_strategy,
    parse_trusted_hosts,
    render_env_example,
    settings_from_mapping,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_without_any_setting() -> None:
    settings = load_settings(env_file=None, environ={})
    assert settings.novita_base_url == "https://api.novita.ai"
    assert settings.discord_api_base_url == "https://discord.com/api/v10"
    assert settings.discord_gateway_url is None
    assert settings.database_url.reveal().startswith("sqlite+aiosqlite:///")
    assert settings.discord_token is None


def test_dataclass_defaults_match_the_field_table() -> None:
    defaults = Settings()
    for field in FIELDS:
        assert getattr(defaults, field.attr) == field.default, field.env


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            env_file=None,
            environ={
                "NOVITA_BASE_URL": "api.novita.ai",
                "LOG_LEVEL": "LOUD",
                "JOB_DEADLINE_SECONDS": "soon",
                "POLL_MIN_INTERVAL_SECONDS": "0",
            },
        )
    text = info.value.render()
    for name in ("NOVITA_BASE_URL", "LOG_LEVEL", "JOB_DEADLINE_SECONDS", "POLL_MIN_INTERVAL"):
        assert name in text
    assert ".env.example" in text


def test_require_lists_missing_secrets() -> None:
    settings = load_settings(env_file=None, environ={})
    with pytest.raises(SettingsError) as info:
        settings.require("discord_token", "novita_api_key")
    assert [p.split()[0] for p in info.value.problems] == ["DISCORD_TOKEN", "NOVITA_API_KEY"]


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOVITA_API_KEY=from-file\nLOG_LEVEL=debug\n")
    settings = load_settings(env_file=env_file, environ={"LOG_LEVEL": "WARNING"})
    assert settings.novita_api_key == Secret("from-file")
    assert settings.log_level == "WARNING"


def test_secrets_never_show(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(
        env_file=None, environ={"DISCORD_TOKEN": "tok-SECRET-1", "NOVITA_API_KEY": "key-SECRET-2"}
    )
    caplog.set_level(logging.DEBUG)
    logging.getLogger("bot.test").info("settings: %s %r", settings, settings)
    shown = repr(settings) + str(settings) + caplog.text
    assert "SECRET" not in shown
    assert settings.novita_api_key is not None
    assert settings.novita_api_key.reveal() == "key-SECRET-2"


def test_the_database_url_never_shows_its_password(caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+asyncpg://bot:pa%40ss-SECRET@db.example:5432/imagine"
    settings = load_settings(env_file=None, environ={"DATABASE_URL": url})
    caplog.set_level(logging.DEBUG)
    logging.getLogger("bot.test").info(
        "settings: %s %r; database %s", settings, settings, settings.database_url
    )
    shown = repr(settings) + str(settings) + caplog.text + f"{settings.database_url!s}"
    assert "SECRET" not in shown
    assert "postgresql+asyncpg://bot:***@db.example:5432/imagine" in shown
    assert settings.database_url.reveal() == url
    assert settings.database_url == SecretUrl(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite+aiosqlite:///data/imagine.db", "sqlite+aiosqlite:///data/imagine.db"),
        ("postgresql+asyncpg://bot@db/imagine?password=SECRET",
         "postgresql+asyncpg://bot@db/imagine?password=masked"),
        ("not a url, SECRET inside", "********"),  # nobody can tell where its password is
    ],
)
def test_a_secret_url_shows_only_what_is_not_secret(url: str, shown: str) -> None:
    assert str(SecretUrl(url)) == shown
    assert repr(SecretUrl(url)) == f"SecretUrl({shown!r})"


def test_malformed_secret_value_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None, environ={"JOB_DEADLINE_SECONDS": "-5"})
    assert "at least" in str(info.value)


def test_env_example_is_generated_from_the_table() -> None:
    assert (ROOT / ".env.example").read_text() == render_env_example()


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f.env for f in FIELDS if f"`{f.env}`" not in readme]
    assert missing == []


def test_python_m_bot_without_env_prints_settings_message(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "DISCORD_TOKEN" in proc.stderr and "NOVITA_API_KEY" in proc.stderr
    assert ".env.example" in proc.stderr
    assert "python -m bot demo" in proc.stderr  # no .env yet: how to try it offline


def test_offline_hint_only_on_a_first_run(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "DISCORD_TOKEN" in proc.stderr
    assert "python -m bot demo" not in proc.stderr


def test_shards_are_parsed_and_checked() -> None:
    settings = load_settings(env_file=None, environ={"SHARD_COUNT": "4", "SHARD_IDS": "2, 3"})
    assert settings.shard_count == 4 and settings.shard_ids == (2, 3)
    with pytest.raises(SettingsError, match="SHARD_COUNT"):
        load_settings(env_file=None, environ={"SHARD_IDS": "0"})
    with pytest.raises(SettingsError, match="between 0 and"):
        load_settings(env_file=None, environ={"SHARD_COUNT": "2", "SHARD_IDS": "0,2"})
    with pytest.raises(SettingsError, match="comma-separated"):
        load_settings(env_file=None, environ={"SHARD_COUNT": "2", "SHARD_IDS": "zero"})


# ---- POLL_STRATEGY and TRUSTED_IMAGE_HOSTS, parsed here for the poller and the download guard


@pytest.mark.parametrize(
    "spec", ["fast", "fixed:0", "fixed:", "backoff:2:0.5:5", "backoff:2:1.3:1", "fixed:-1"]
)
def test_poll_strategy_nonsense_is_refused_with_what_is_accepted(spec: str) -> None:
    with pytest.raises(ValueError, match="adaptive, fixed"):
        parse_poll_strategy(spec)
    with pytest.raises(SettingsError, match="POLL_STRATEGY"):
        settings_from_mapping({"POLL_STRATEGY": spec})


def test_trusted_hosts_are_parsed_and_normalised() -> None:
    assert parse_trusted_hosts("") == ()
    assert parse_trusted_hosts(" 127.0.0.1:8089 , Images.Example.:443,[::1]:80") == (
        "127.0.0.1:8089", "images.example:443", "[::1]:80",
    )


@pytest.mark.parametrize("text", ["127.0.0.1", "host:", ":80", "host:0", "host:70000",
                                  "host:http", "::1:80"])
def test_malformed_trusted_hosts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_trusted_hosts(text)


def test_trusted_hosts_setting_reports_bad_entries() -> None:
    settings = settings_from_mapping({"TRUSTED_IMAGE_HOSTS": "127.0.0.1:8089,localhost:9000"})
    assert settings.trusted_image_hosts == ("127.0.0.1:8089", "localhost:9000")
    assert settings_from_mapping({}).trusted_image_hosts == ()
    with pytest.raises(SettingsError, match="TRUSTED_IMAGE_HOSTS"):
        settings_from_mapping({"TRUSTED_IMAGE_HOSTS": "127.0.0.1"})
