"""The README stays true: its quick start is what CI runs, its examples run, its settings table is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_quick_start_is_exactly_two_commands_and_ci_runs_the_second() -> None:
    [block] = _blocks(_section("Quick start"), "console")
    commands = [line for line in block.splitlines() if line.strip()]
    assert commands == ["python3 dev.py serve", "python3 dev.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python3 dev.py test$", ci, re.M)


def test_configuration_example_is_valid(tmp_path: Path) -> None:
    [example] = _blocks(_section("Configuration"), "yaml")
    path = tmp_path / "senior-review.yml"
    path.write_text(example)
    done = subprocess.run([sys.executable, "-m", "bot", "check-config", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(example + "unknown_key: 1\n")
    done = subprocess.run([sys.executable, "-m", "bot", "check-config", str(broken)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "unknown_key" in done.stderr


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "status", "retry", "review", "eval", "check-config"])
def test_every_cli_command_the_readme_names_has_help(command: str) -> None:
    assert f"python -m bot {command}" in README or f"bot {command}" in README
    done = subprocess.run([sys.executable, "-m", "bot", command, "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout


def test_settings_table_names_every_setting() -> None:
    table = _section("Settings")
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in table]
    # Internal tuning knobs documented in bot/settings.py only.
    assert set(missing) <= {"MODEL_MAX_RETRIES", "SHUTDOWN_GRACE_SECONDS", "GITHUB_URL"}, missing


def test_permissions_in_readme_match_the_apps_single_list() -> None:
    from bot.github.manifest import APP_EVENTS, APP_PERMISSIONS

    text = _section("Create and install the GitHub App")
    for event in APP_EVENTS:
        assert f"`{event}`" in text
    for name, access in APP_PERMISSIONS.items():
        assert f"{name.replace('_', ' ')} **{access}**" in text, name
