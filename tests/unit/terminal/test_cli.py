from __future__ import annotations

import pytest

from bot.terminal import cli
from fakes.novita import server as mock_novita


def test_mock_novita_options_are_handed_over_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(mock_novita, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["mock-novita", "--port", "8089", "--time-scale", "0.5"]) == 0
    assert seen == [["--port", "8089", "--time-scale", "0.5"]]


def test_sync_without_token_prints_the_settings_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    for name in ("DISCORD_TOKEN", "NOVITA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["sync"]) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN" in err and "NOVITA_API_KEY" not in err
