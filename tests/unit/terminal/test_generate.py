"""`python -m bot generate`: in-process against the embedded mock, with tiny durations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.terminal import cli, generate

FAST = ["--mock", "--mock-time-scale", "0.005"]


@pytest.fixture(autouse=True)
def _no_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    monkeypatch.delenv("NOVITA_API_KEY", raising=False)


@pytest.mark.timeout(30)
def test_mock_run_writes_a_jpeg_of_the_requested_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "posters" / "poster.jpeg"
    code = generate.main(["a poster that says HELLO", "--size", "768*1024", "--out", str(out),
                          *FAST])
    assert code == 0
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (768, 1024)
    printed = capsys.readouterr().out
    assert str(out) in printed and "768×1024" in printed


@pytest.mark.timeout(30)
def test_wired_into_the_bot_cli_with_a_preset(tmp_path: Path) -> None:
    out = tmp_path / "p.jpeg"
    assert cli.main(["generate", "a fox", "--size", "portrait", "--out", str(out), *FAST]) == 0
    with Image.open(out) as image:
        assert image.size == (1024, 1536)


def test_invalid_size_exits_2_without_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jpeg"
    assert generate.main(["a fox", "--size", "2048*2048", "--out", str(out), *FAST]) == 2
    assert "size" in capsys.readouterr().err.lower() and not out.exists()


def test_empty_prompt_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["   ", *FAST]) == 2
    assert "prompt" in capsys.readouterr().err.lower()


def test_missing_key_without_mock_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["a fox"]) == 2
    assert "NOVITA_API_KEY" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_upstream_failure_prints_one_friendly_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jpeg"
    code = generate.main(["a fox [mock:failed]", "--out", str(out), *FAST])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "could not make this image" in err and "Traceback" not in err


def test_save_jpeg_converts_other_formats(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 20, 30, 128)).save(buffer, format="PNG")
    out = tmp_path / "converted.jpeg"
    assert generate.save_jpeg(buffer.getvalue(), out)[:2] == (300, 200)
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (300, 200)
