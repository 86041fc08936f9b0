"""Deployment files: fly.toml and the Dockerfile agree with what the app really serves, reads and needs."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import socket
import subprocess
import time
import tomllib
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest
from pydantic import SecretStr
from starlette.routing import BaseRoute, Mount

from bot.cli import build_parser
from bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
FLY = tomllib.loads((ROOT / "fly.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ALLOWED_SYSTEM_COMMANDS = ("groupadd", "useradd", "mkdir", "chown")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (comments and blank lines dropped, `\\` continuations joined)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "dangling line continuation"
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE)


def only(keyword: str) -> Instruction:
    """The single instruction with this keyword."""
    found = [i for i in INSTRUCTIONS if i.keyword == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


def env_pairs(keyword: str = "ENV") -> dict[str, str]:
    """All `ENV K=V ...` values of the Dockerfile, later ones winning."""
    values: dict[str, str] = {}
    for instruction in INSTRUCTIONS:
        if instruction.keyword == keyword:
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def copies() -> list[tuple[int, list[str], str]]:
    """(index, sources, destination) of every COPY."""
    result = []
    for index, instruction in enumerate(INSTRUCTIONS):
        if instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.args)
            assert not any(s.startswith("--") for s in sources), "COPY flags are not emulated"
            result.append((index, sources, destination))
    return result


def app_route_paths() -> set[str]:
    """Every path the real app serves (mounts flattened)."""
    from bot.wiring import build_app

    def walk(routes: list[BaseRoute], prefix: str) -> set[str]:
        paths: set[str] = set()
        for route in routes:
            path = prefix + str(getattr(route, "path", ""))
            if isinstance(route, Mount):
                paths |= walk(list(route.routes), path)
            else:
                paths.add(path)
        return paths

    return walk(list(build_app(load_settings()).routes), "")


# ---------------------------------------------------------------------------------------------------------------
# fly.toml


def test_fly_toml_health_check_is_a_real_route() -> None:
    (check,) = FLY["http_service"]["checks"]
    assert check["method"] == "GET"
    assert check["path"] == "/healthz"
    assert check["path"] in app_route_paths()


def test_fly_toml_port_is_the_apps_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FLY["env"].items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert FLY["http_service"]["internal_port"] == settings.port == Settings().port
    assert settings.host == "0.0.0.0"
    assert settings.log_format == "json"


def test_fly_toml_mount_is_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    (mount,) = FLY["mounts"]
    assert mount["source"] == "senior_review_data"
    monkeypatch.setenv("DATA_DIR", FLY["env"]["DATA_DIR"])
    settings = load_settings()
    assert settings.data_dir == Path(mount["destination"]) == Path(env_pairs()["DATA_DIR"])
    assert settings.async_database_url.startswith(f"sqlite+aiosqlite:///{mount['destination']}/")
    from bot.github.credentials import credentials_path

    assert credentials_path(settings).parent == Path(mount["destination"])


def test_fly_toml_keeps_a_machine_answering_webhooks() -> None:
    service = FLY["http_service"]
    assert service["auto_stop_machines"] == "off"
    assert service["auto_start_machines"] is True
    assert service["min_machines_running"] >= 1
    assert service["force_https"] is True
    assert FLY["build"]["dockerfile"] == "Dockerfile"
    assert "/webhook" in app_route_paths()


def test_fly_toml_env_names_are_settings_and_not_secrets() -> None:
    fields = Settings.model_fields
    secret_names = {
        name.upper() for name, info in fields.items() if SecretStr in (info.annotation, *get_args(info.annotation))
    }
    assert secret_names >= {"GITHUB_APP_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET", "ANTHROPIC_API_KEY"}
    for name in FLY["env"]:
        assert name.lower() in fields, f"[env] {name} is not a setting"
        assert name not in secret_names, f"[env] {name} is a secret: use fly secrets set"
    text = (ROOT / "fly.toml").read_text()
    assert "PRIVATE KEY" not in text
    assert not re.search(r"(?m)^\s*(GITHUB_APP_ID|GITHUB_WEBHOOK_SECRET|ANTHROPIC_API_KEY)\s*=", text)


def test_fly_toml_migrates_at_start_not_in_a_release_command() -> None:
    assert "release_command" not in FLY.get("deploy", {})  # no volume there: it could not migrate SQLite
    text = (ROOT / "fly.toml").read_text()
    commented = re.search(r'(?m)^#\s*release_command\s*=\s*"senior-review (\w+)"', text)
    assert commented, "the PostgreSQL release_command is shown, commented"
    assert build_parser().parse_args([commented.group(1)]).command == "migrate"
    assert shlex.split(FLY["processes"]["app"]) == json.loads(only("CMD").args)
    assert FLY["mounts"][0]["processes"] == FLY["http_service"]["processes"] == ["app"]


# ---------------------------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_base_is_slim_python_matching_requires_python() -> None:
    (base,) = [i for i in INSTRUCTIONS if i.keyword == "FROM"]
    match = re.fullmatch(r"python:(3\.\d+)-slim", base.args)
    assert match, base.args
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, match.group(1).split("."))) >= tuple(map(int, minimum.split(".")))


def test_dockerfile_runs_as_non_root_after_the_last_build_step() -> None:
    user = only("USER")
    name = user.args.split(":", 1)[0]
    assert name not in ("root", "0")
    position = INSTRUCTIONS.index(user)
    assert all(i.keyword != "RUN" for i in INSTRUCTIONS[position:]), "RUN after USER would need root"
    creates = [i.args for i in INSTRUCTIONS[:position] if i.keyword == "RUN" and "useradd" in i.args]
    assert creates and f"--uid {name}" in creates[0]
    data_dir = env_pairs()["DATA_DIR"]
    assert f"chown app:app {data_dir}" in creates[0], "the data directory must be writable by the user"


def test_dockerfile_installs_dependencies_before_copying_source() -> None:
    runs = [index for index, i in enumerate(INSTRUCTIONS) if i.keyword == "RUN" and "pip install" in i.args]
    assert len(runs) == 2, "one layer of dependencies, one for the package itself"
    layered = [(index, sources) for index, sources, _ in copies() if index < runs[0]]
    assert layered == [(layered[0][0], ["pyproject.toml"])], "only pyproject.toml goes into the dependency layer"
    later = [source for index, sources, _ in copies() if runs[0] < index < runs[1] for source in sources]
    assert "bot" in later
    assert "pip install --no-deps ." in INSTRUCTIONS[runs[1]].args


def test_dockerfile_copies_everything_the_package_build_reads() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_dirs = {pattern.split("/")[0] for patterns in pyproject["tool"]["setuptools"]["data-files"].values()
                 for pattern in patterns}
    assert "prompts" in data_dirs
    copied = {source for _, sources, _ in copies() for source in sources}
    assert data_dirs | {"bot", "README.md"} <= copied
    for source in copied:
        assert (ROOT / source).exists(), source


def test_dockerfile_command_port_health_and_env() -> None:
    assert json.loads(only("CMD").args) == ["senior-review", "serve"]
    assert build_parser().parse_args(["serve"]).command == "serve"
    env = env_pairs()
    assert env["HOST"] == "0.0.0.0"
    assert env["DATA_DIR"] == FLY["env"]["DATA_DIR"] == "/data"
    assert only("EXPOSE").args == env["PORT"] == str(FLY["http_service"]["internal_port"])
    health = only("HEALTHCHECK").args
    command = json.loads(health.partition("CMD ")[2])
    assert command[:2] == ["python", "-c"]
    assert "urllib" in command[2] and "/healthz" in command[2] and "PORT" in command[2]
    assert "/healthz" in app_route_paths()


def test_dockerignore_keeps_secrets_out_and_sources_in() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for secret in (".env", ".git", ".venv", "data", "*.pem", "credentials.env"):
        assert secret in patterns
    for _, sources, _ in copies():
        for source in sources:
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in patterns), source


# ---------------------------------------------------------------------------------------------------------------
# The image's steps, replayed in a clean virtual environment (no Docker engine here)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _container_path(rootfs: Path, path: str, workdir: Path) -> Path:
    return rootfs / path.lstrip("/") if path.startswith("/") else workdir / path


@pytest.mark.slow
def test_image_steps_install_and_serve_in_a_clean_venv(tmp_path: Path) -> None:
    """Replay WORKDIR, COPY, ENV and the pip RUN in a fresh venv, then start CMD and pass the HEALTHCHECK."""
    rootfs, env_dir = tmp_path / "rootfs", tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ANTHROPIC_", "DATABASE_URL"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(env_dir)
    workdir = rootfs
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "WORKDIR":
            workdir = _container_path(rootfs, instruction.args, workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                env[name] = value
        elif instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.args)
            target = _container_path(rootfs, destination, workdir)
            for source in sources:
                subprocess.run(["cp", "-r", str(ROOT / source), str(target)], check=True)
        elif instruction.keyword == "RUN":
            if "pip install" not in instruction.args:
                first_words = {part.split()[0] for part in instruction.args.split("&&")}
                assert first_words <= set(ALLOWED_SYSTEM_COMMANDS), f"RUN not emulated: {instruction.args}"
                continue
            run_env = {k: v for k, v in env.items() if k != "PIP_NO_CACHE_DIR"}  # speed: reuse this machine's cache
            subprocess.run(["sh", "-c", instruction.args], cwd=workdir, env=run_env, check=True, timeout=240)

    installed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json"], env=env,
                               capture_output=True, text=True, check=True).stdout
    assert "senior-review" in {p["name"] for p in json.loads(installed)}, "the image runs the installed package"
    assert not (workdir / "bot").exists(), "the source is removed once installed"
    port = _free_port()
    env.update({
        "HOST": "127.0.0.1", "PORT": str(port),
        "DATA_DIR": str(_container_path(rootfs, env["DATA_DIR"], workdir)), "ANTHROPIC_API_KEY": "sk-unused",
    })
    health = json.loads(only("HEALTHCHECK").args.partition("CMD ")[2])
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(json.loads(only("CMD").args), cwd=workdir, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        deadline, healthy = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            healthy = subprocess.run(health, cwd=workdir, env=env, capture_output=True, timeout=10)
            if healthy.returncode == 0:
                break
            time.sleep(0.5)
        assert server.poll() is None, log.read_text(errors="replace")[-3000:]
        assert healthy is not None and healthy.returncode == 0, healthy
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
