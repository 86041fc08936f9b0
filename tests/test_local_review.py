"""`python -m bot review` (issue 9, section 2): local diffs and pull requests against the loopback fakes.

A few tests run the real command in a subprocess (clean environment: PATH, HOME, DATA_DIR and the fake Claude's
key and URL only); the others call `bot.cli.main` in-process with the same environment, which is faster.
Personal tokens: the fake GitHub validates tokens from `fake.tokens`; a fine-grained personal access token is
modelled as a `FakeToken` limited to selected repositories and permissions, which is how GitHub scopes one
(docs.github.com, "Managing your personal access tokens": fine-grained tokens select repositories and
permissions). Reviews posted with it are attributed by the fake to the App's bot user, which these tests ignore.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.local_output import Status
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakeToken

ROOT = Path(__file__).resolve().parent.parent
OWNER, REPO = "octo", "repo"
HEAD, BASE = "a" * 40, "0" * 40
TOKEN = "github_pat_" + "x" * 30
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

OLD = "def find_user(conn, name):\n    return None\n"
NEW = (
    "def find_user(conn, name):\n"
    "    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
    "    return conn.execute(sql).fetchone()\n"
)
DIFF = git_diff(
    {"app/users.py": OLD, "app/util.py": "X = 1\n"},
    {"app/users.py": NEW, "app/util.py": "X = 1\nY = eval(input())\n"},
)


def _high(**kw: Any) -> dict[str, Any]:
    fields = {"title": "SQL injection in find_user", "severity": "high", "category": "security", **kw}
    return finding("app/users.py", 2, **fields)


def _medium(**kw: Any) -> dict[str, Any]:
    fields = {"title": "eval of user input", "severity": "medium", "category": "reliability", **kw}
    return finding("app/util.py", 2, **fields)


def _env(fake_claude: FakeClaude, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(tmp_path / "data"),
        "ANTHROPIC_API_KEY": fake_claude.api_key,
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "MODEL_MAX_RETRIES": "0",
    }
    env.update(extra)
    return env


def _run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "review", *args], env=env, cwd=cwd, input=stdin, capture_output=True,
        timeout=60, check=False,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture
def cli_env(fake_claude: FakeClaude, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The subprocess environment, also applied to this process (cwd: tmp_path, so no developer `.env`)."""
    env = _env(fake_claude, tmp_path)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "MODEL_MAX_RETRIES", "DATA_DIR"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def diff_file(tmp_path: Path) -> Path:
    path = tmp_path / "change.diff"
    path.write_text(DIFF)
    return path


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["review", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------- the command in a subprocess


@pytest.mark.slow
def test_diff_file_text_output_is_grouped_clean_and_fails_on_high(
    fake_claude: FakeClaude, cli_env: dict[str, str], diff_file: Path, tmp_path: Path
) -> None:
    fake_claude.queue(Answer(
        summary="Two problems.\x1b]0;pwned\x07",
        findings=[
            _high(body="Use a parameter.\x1b[2J\x1b[31mred\x1b[0m\rover", suggestion="    sql = 'x'\x9b31m"),
            _medium(title="eval \x1b[1mof\x1b[0m user input"),
        ],
    ))

    done = _run(["--diff", str(diff_file), "--fail-on", "high"], cli_env, tmp_path)

    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert not CONTROL.search(out), repr(out)
    assert "\u202e" not in out
    # grouped by file, in path order, each finding with its line, severity/category and title
    assert out.index("app/users.py") < out.index("line 2 [high/security] SQL injection in find_user")
    assert out.index("app/util.py") < out.index("line 2 [medium/reliability] eval ?[1mof?[0m user input")
    assert "Use a parameter.?[2J?[31mred?[0m?over" in out
    assert "        | " in out  # the suggestion
    assert "Two problems.?]0;pwned?" in out
    assert "2 findings; 2 files reviewed, 0 not reviewed" in out
    assert re.search(r"tokens: \d+ in, \d+ out, .*cost \$\d+\.\d{4} \(claude-", out)
    # progress went to stderr, as plain lines (not a terminal)
    assert "reviewing" not in out and "reviewed in" not in out
    assert "reviewing 2 files in 1 batch" in done.stderr and "reviewed in" in done.stderr
    assert "\x1b" not in done.stderr


@pytest.mark.slow
def test_stdin_json_output_parses_and_passes_below_the_gate(
    fake_claude: FakeClaude, cli_env: dict[str, str], tmp_path: Path
) -> None:
    fake_claude.queue(Answer(summary="One medium problem.", findings=[_medium(suggestion="Y = int(input())")]))

    done = _run(["--diff", "-", "--format", "json", "--fail-on", "high"], cli_env, tmp_path, DIFF.encode())

    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["source"] == "-"
    assert data["summary"] == "One medium problem."
    [f] = data["findings"]
    assert f == {
        "path": "app/util.py", "start_line": 2, "end_line": 2, "side": "right", "severity": "medium",
        "category": "reliability", "title": "eval of user input",
        "body": "User input reaches the query unescaped, so any caller can read every row.",
        "suggestion": "Y = int(input())",
    }
    assert sorted(data["reviewed"]) == ["app/users.py", "app/util.py"]
    assert data["not_reviewed"] == []
    usage = data["usage"]
    assert usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert data["cost_usd"] > 0 and data["model"] == "claude-sonnet-5-5"
    assert "reviewed in" in done.stderr


@pytest.mark.slow
def test_missing_key_stops_at_once_with_one_line(fake_claude: FakeClaude, tmp_path: Path, diff_file: Path) -> None:
    env = _env(fake_claude, tmp_path)
    del env["ANTHROPIC_API_KEY"]

    done = _run(["--diff", str(diff_file)], env, tmp_path)

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "ANTHROPIC_API_KEY" in lines[0] and lines[0].startswith("review: set ")
    assert fake_claude.requests == []


# ------------------------------------------------------------------------------- in-process: formats and exits


def test_github_format_prints_escaped_annotations(
    fake_claude: FakeClaude, cli_env: dict[str, str], diff_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_claude.queue(Answer(findings=[
        _high(title="SQL: injection, here", body="Line one.\nLine two: 100% \x1b[31mbad\x1b[0m"),
        _medium(),
        finding("app/users.py", 3, severity="low", category="design", title="Naming"),
    ]))

    code, out, err = _main(capsys, "--diff", str(diff_file), "--format", "github")

    assert code == 0, err
    lines = out.splitlines()
    assert lines == [
        "::error file=app/users.py,line=2,endLine=2,title=SQL%3A injection%2C here (high%2C security)"
        "::Line one.%0ALine two: 100%25 ?[31mbad?[0m",
        "::notice file=app/users.py,line=3,endLine=3,title=Naming (low%2C design)"
        "::User input reaches the query unescaped, so any caller can read every row.",
        "::warning file=app/util.py,line=2,endLine=2,title=eval of user input (medium%2C reliability)"
        "::User input reaches the query unescaped, so any caller can read every row.",
    ]
    assert "reviewed in" in err


def test_not_reviewed_files_appear_in_every_format(
    fake_claude: FakeClaude, cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diff = git_diff({"app/a.py": "A = 1\n", "package-lock.json": '{"a": 1}\n'},
                    {"app/a.py": "A = 2\n", "package-lock.json": '{"a": 2}\n'})
    (tmp_path / "d.diff").write_text(diff)
    outputs = {}
    for fmt in ("text", "json", "github"):
        code, outputs[fmt], _ = _main(capsys, "--diff", "d.diff", "--format", fmt)
        assert code == 0
    assert "not reviewed: package-lock.json (" in outputs["text"]
    assert [n["path"] for n in json.loads(outputs["json"])["not_reviewed"]] == ["package-lock.json"]
    assert outputs["github"].startswith("::notice file=package-lock.json::not reviewed: ")


@pytest.mark.parametrize(
    ("severities", "fail_on", "expected"),
    [
        (["critical"], "high", 1),
        (["high"], "high", 1),
        (["medium", "low"], "high", 0),
        (["low"], "low", 1),
        (["critical"], "never", 0),
        ([], "low", 0),
    ],
)
def test_fail_on_sets_the_exit_code(
    fake_claude: FakeClaude, cli_env: dict[str, str], diff_file: Path, capsys: pytest.CaptureFixture[str],
    severities: list[str], fail_on: str, expected: int,
) -> None:
    fake_claude.queue(Answer(findings=[
        finding("app/users.py", 2 + i % 2, severity=s, title=f"finding {i}") for i, s in enumerate(severities)
    ]))

    code, out, _ = _main(capsys, "--diff", str(diff_file), "--fail-on", fail_on)

    assert code == expected
    assert f"{len(severities)} finding" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--diff", "x.diff", "octo/repo#1"], "exactly one of"),
        ([], "exactly one of"),
        (["--diff", "x.diff", "--post"], "--post needs OWNER/REPO#N"),
        (["octo/repo"], "is not OWNER/REPO#N"),
        (["--diff", "missing.diff"], "cannot read missing.diff"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    fake_claude: FakeClaude, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:
    code, out, err = _main(capsys, *args)

    assert code == 2
    assert out == ""
    assert message in err and len(err.splitlines()) == 1
    assert fake_claude.requests == []


def test_unknown_format_is_a_usage_error(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, "--diff", "-", "--format", "xml")
    assert code == 2 and out == "" and "invalid choice" in err


def test_empty_key_counts_as_missing(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "  ")
    code, out, err = _main(capsys, "--diff", "-")
    assert code == 2 and out == "" and err.count("\n") == 1 and "ANTHROPIC_API_KEY" in err


def test_undecodable_bytes_and_control_characters_in_the_diff_are_harmless(
    fake_claude: FakeClaude, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = git_diff({"app/x.py": "A = 1\n"}, {"app/x.py": "A = 1\nB = '\x1b[31m'\n"}).encode()
    raw = raw.replace(b"B = ", b"B = \xff\xfe ")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    fake_claude.queue(Answer(findings=[finding("app/x.py", 2, title="odd bytes")]))

    code, out, _ = _main(capsys, "--diff", "-")

    assert code == 0
    assert "odd bytes" in out and not CONTROL.search(out)
    sent = json.dumps(fake_claude.requests[-1].json["messages"])
    assert "\\ufffd\\ufffd" in sent  # decoded as GitHub's diff is: UTF-8, invalid bytes replaced


def test_json_keeps_model_text_exact_but_escaped(
    fake_claude: FakeClaude, cli_env: dict[str, str], diff_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    title = "bad \x1b[31mtitle\x1b[0m \u202e"
    fake_claude.queue(Answer(findings=[_high(title=title)]))

    code, out, _ = _main(capsys, "--diff", str(diff_file), "--format", "json")

    assert code == 0
    assert not CONTROL.search(out) and "\u202e" not in out  # ASCII only: every control is a \u escape
    assert json.loads(out)["findings"][0]["title"] == title.strip()


def test_text_colours_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.local_output import LocalResult, _print_text

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    result = _fake_result("high")
    plain, tty = io.StringIO(), Tty()
    _print_text(result, plain)
    _print_text(result, tty)
    assert "\x1b" not in plain.getvalue()
    assert "\x1b[31mhigh/security\x1b[0m" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")  # no-color.org
    no_colour = Tty()
    _print_text(result, no_colour)
    assert no_colour.getvalue() == plain.getvalue()
    assert isinstance(result, LocalResult)


async def test_status_is_live_on_a_terminal_and_plain_lines_otherwise() -> None:
    import asyncio

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    async def work(status: Status) -> str:
        status.stage("reviewing 1 file in 1 batch")
        for _ in range(1000):  # until the live line has been redrawn with the new stage (it never is on a pipe)
            if not status.tty or "reviewing 1 file in 1 batch ..." in tty.getvalue():
                break
            await asyncio.sleep(0.01)
        return "done"

    tty, plain = Tty(), io.StringIO()
    live, lines = Status(tty), Status(plain)
    assert await live.around(work(live), "reviewing") == "done"
    assert await lines.around(work(lines), "reviewing") == "done"
    assert "\r\x1b[Kreviewing 1 file in 1 batch ... 0s" in tty.getvalue()
    assert re.search(r"\r\x1b\[Kreviewed in \d+\.\ds\n$", tty.getvalue())
    assert "\x1b" not in plain.getvalue() and "\r" not in plain.getvalue()
    assert plain.getvalue().splitlines()[0] == "reviewing 1 file in 1 batch ..."
    assert plain.getvalue().splitlines()[-1].startswith("reviewed in ")


def test_model_failure_is_an_error_not_a_clean_pass(
    fake_claude: FakeClaude, cli_env: dict[str, str], diff_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_claude.fail_next("overloaded", times=5)

    code, out, err = _main(capsys, "--diff", str(diff_file))

    assert code == 1
    assert out == ""
    assert err.splitlines()[-1].startswith("error: ")


# ------------------------------------------------------------------------------- pull requests with a token


def _pull(fake: FakeGitHub, config_at_base: str | None = None, config_at_head: str | None = None) -> Any:
    pr = fake.add_pull(OWNER, REPO, DIFF, head_sha=HEAD, base_sha=BASE, head_ref="feature", base_ref="main",
                       title="Find users by name")
    if config_at_base is not None:
        fake.set_file(OWNER, REPO, "main", ".github/senior-review.yml", config_at_base)
    if config_at_head is not None:
        fake.set_file(OWNER, REPO, "feature", ".github/senior-review.yml", config_at_head)
    return pr


def _personal_token(fake: FakeGitHub, *, write: bool) -> None:
    level = "write" if write else "read"
    fake.tokens[TOKEN] = FakeToken(TOKEN, 100, [REPO], {"pull_requests": level, "contents": "read",
                                                        "metadata": "read"}, time.time() + 3600)


def _submitted(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [r for r in fake.reviews(OWNER, REPO, 1) if r.get("state") != "PENDING"]


@pytest.fixture
def pr_env(cli_env: dict[str, str], fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("GITHUB_MAX_WAIT_SECONDS", "1")


def test_pull_request_review_is_read_only_and_uses_the_base_branch_config(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull(fake_github, config_at_base="min_inline_severity: high\n", config_at_head="enabled: false\n")
    _personal_token(fake_github, write=False)
    fake_claude.queue(Answer(summary="Looked at it.", findings=[_high(), _medium()]))

    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1", "--format", "json", "--fail-on", "high")

    assert code == 1, err
    data = json.loads(out)
    assert data["pull_request"] == {"repo": "octo/repo", "number": 1, "head_sha": HEAD, "title": "Find users by name"}
    assert [f["title"] for f in data["findings"]] == ["SQL injection in find_user"]  # medium below the base config
    assert data["below_threshold"] == 1 and data["posted_review"] is None
    assert [r.method for r in fake_github.requests if r.method != "GET"] == []
    contents = fake_github.requests_to("GET", r"/contents/")
    assert [r.query.get("ref") for r in contents if r.path.startswith("/repos/octo/repo/")] == ["main"]
    assert all(r.headers.get("authorization") == f"token {TOKEN}" for r in fake_github.requests)
    user_text = json.dumps(fake_claude.requests[-1].json["messages"])
    assert "Find users by name" in user_text and "find_user" in user_text


def test_pull_request_post_submits_one_review_rendered_like_the_app(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull(fake_github)
    _personal_token(fake_github, write=True)
    fake_claude.queue(Answer(findings=[
        _high(suggestion="    sql = \"SELECT id FROM users WHERE name = ?\""),
        finding("app/users.py", 90, title="Outside the diff", category="design", severity="medium"),
    ]))

    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1", "--post")

    assert code == 0, err
    [review] = _submitted(fake_github)
    assert review["state"] == "COMMENTED" and review["commit_id"] == HEAD
    assert "Outside the diff" in review["body"]  # unplaced findings go to the body, as the App does
    assert "senior-review" in review["body"]  # the App's review marker
    comments = [c for c in fake_github.review_comments.values() if c.get("pull_request_review_id") == review["id"]]
    assert [(c["path"], c["line"], c["side"]) for c in comments] == [("app/users.py", 2, "RIGHT")]
    assert "```suggestion" in comments[0]["body"]
    assert f"posted review {review['id']}" in out
    assert len(fake_github.requests_to("POST", r"/pulls/1/reviews$")) == 1


def test_pull_request_post_refuses_when_the_head_moved(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pr = _pull(fake_github)
    _personal_token(fake_github, write=True)

    def answer(_request: dict[str, Any]) -> Answer:
        fake_github.push(pr, DIFF, "b" * 40)
        return Answer(findings=[_high()])

    fake_claude.queue(answer)

    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1", "--post")

    assert code == 1 and out == ""
    assert "head moved" in err and "nothing was posted" in err
    assert fake_github.requests_to("POST", r"/reviews") == []


def test_pull_request_without_token_or_access(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _pull(fake_github)
    monkeypatch.delenv("GITHUB_TOKEN")
    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1")
    assert code == 2 and out == "" and "GITHUB_TOKEN" in err and len(err.splitlines()) == 1

    monkeypatch.setenv("GITHUB_TOKEN", "ghp_unknown")  # not a token the fake knows: 401 Bad credentials
    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1")
    assert code == 1 and out == "" and "Bad credentials" in err
    assert fake_claude.requests == []


def test_post_is_refused_when_the_base_config_disables_reviews(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull(fake_github, config_at_base="enabled: false\n")
    _personal_token(fake_github, write=True)

    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1", "--post")

    assert code == 2 and out == ""
    assert "enabled: false" in err
    assert fake_claude.requests == [] and fake_github.requests_to("POST", r"/reviews") == []


def test_config_problems_are_reported_and_the_review_runs_on_defaults(
    fake_claude: FakeClaude, fake_github: FakeGitHub, pr_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull(fake_github, config_at_base="min_inline_severity: urgent\n")
    _personal_token(fake_github, write=False)
    fake_claude.queue(Answer(findings=[_medium()]))

    code, out, err = _main(capsys, f"{OWNER}/{REPO}#1", "--format", "json")

    assert code == 0
    data = json.loads(out)
    assert [f["severity"] for f in data["findings"]] == ["medium"]  # the invalid layer was skipped
    [note] = data["notes"]
    assert note.startswith("configuration problem: ") and "min_inline_severity" in note
    assert f"review: {note}" in err


async def test_token_client_identity_and_empty_token(fake_github: FakeGitHub, cli_env: dict[str, str]) -> None:
    from bot.errors import ConfigError
    from bot.github.auth import ACTIONS_LOGIN, GitHubToken, token_repo_client
    from bot.settings import load_settings

    settings = load_settings(github_api_url=fake_github.url)
    _pull(fake_github)
    _personal_token(fake_github, write=False)
    gh = token_repo_client(settings, f" {TOKEN}\n", OWNER, REPO)
    try:
        assert (await gh.get_pull(1)).head_sha == HEAD
        # The fake has no `GET /user` (404), like an Actions token that may not read it (403): the Actions bot.
        assert (await gh.app.identity()).bot_login == ACTIONS_LOGIN
        assert isinstance(gh.app, GitHubToken) and gh.installation_id == 0
    finally:
        await gh.app.aclose()
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        GitHubToken(settings, " ")


# ------------------------------------------------------------------------------- helpers


def _fake_result(severity: str) -> Any:
    from bot.analysis import Analysis
    from bot.domain import Category, Finding, Severity, Side
    from bot.findings import Decision, Placement
    from bot.local_output import LocalResult
    from bot.render import Unplaced

    f = Finding("app/users.py", 2, 2, Side.RIGHT, Severity(severity), Category.SECURITY, "title", "body", None)
    placement = Placement((), (Unplaced(f, "fp", "no diff line"),), ())
    return LocalResult(Analysis(("app/users.py",), (), None, Decision((), (), ()), placement), "x.diff")
