"""The command line: sub-commands, help, and exit codes (0 ok, 2 usage/config error, 1 failure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent


def test_help_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    assert "serve" in capsys.readouterr().out
    assert main(["frobnicate"]) == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["serve"], {"PORT": "eighty"}, "PORT"),
        (["migrate"], {"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL"),
        (["serve"], {"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        (["serve"], {"GITHUB_API_URL": "ftp://example.com"}, "GITHUB_API_URL"),
    ],
)
def test_malformed_setting_exits_2_with_one_line_naming_it(
    argv: list[str], env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err


def test_worker_without_app_credentials_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker"]) == EXIT_USAGE
    assert "GITHUB_APP_ID" in capsys.readouterr().err


def test_real_process_exit_code_for_a_bad_setting(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PORT": "-1", "DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.count("\n") == 1 and "PORT" in done.stderr
