"""End to end: the real server process, signed webhooks, the fake GitHub and fake Claude over loopback."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub
from tests.helpers_server import (
    SECRET,
    child_env,
    dumps,
    free_port,
    headers,
    pr_payload,
    start_process,
    stop_process,
    wait_http,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

HEAD = "d" * 40
OLD = "def find_user(conn, name):\n    return None\n"
NEW = (
    "def find_user(conn, name):\n"
    "    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
    "    return conn.execute(sql).fetchone()\n"
)


@pytest.fixture
def server(fake_github: FakeGitHub, fake_claude: FakeClaude, rsa_private_key_pem: str,
           tmp_path: Path) -> Iterator[str]:
    """`python -m bot serve` with one worker, configured for the fakes; yields its base URL."""
    key = tmp_path / "app.pem"
    key.write_text(rsa_private_key_pem)
    port = free_port()
    env = child_env(
        DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),
        GITHUB_APP_ID="1",
        GITHUB_APP_PRIVATE_KEY_FILE=str(key),
        GITHUB_WEBHOOK_SECRET=SECRET,
        GITHUB_API_URL=fake_github.url,
        ANTHROPIC_API_KEY=fake_claude.api_key,
        ANTHROPIC_BASE_URL=fake_claude.base_url,
        LOG_FORMAT="json",
        WORKERS="1",
    )
    process = start_process(["-m", "bot", "serve"], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", process=process)
        yield base
    finally:
        stop_process(process)


def _deliver(base: str, event: str, payload: dict[str, Any], delivery: str) -> int:
    body = dumps(payload)
    return httpx.post(f"{base}/webhook", content=body, headers=headers(body, event, delivery)).status_code


def _opened(number: int = 1, sha: str = HEAD, **kw: Any) -> dict[str, Any]:
    payload = pr_payload("opened", number=number, sha=sha, **kw)
    payload["repository"] = {"name": "repo", "full_name": "octo/repo", "owner": {"login": "octo"}}
    payload["installation"] = {"id": 100}
    return payload


def test_signed_pr_opened_webhook_ends_in_one_precise_review(
    server: str, fake_github: FakeGitHub, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    fake_github.add_pull("octo", "repo", git_diff({"app/users.py": OLD, "yarn.lock": "a\n"},
                                                  {"app/users.py": NEW, "yarn.lock": "b\n"}), head_sha=HEAD)
    fake_claude.queue(Answer(findings=[
        finding("app/users.py", 2, title="SQL injection in find_user", severity="critical"),
        finding("app/users.py", 99, title="Cited a line outside the diff", category="reliability"),
        finding("lib/ghost.py", 1, title="Cited a file outside the PR", category="design"),
    ]))

    assert _deliver(server, "pull_request", _opened(), "e2e-1") == 202
    assert _deliver(server, "pull_request", _opened(), "e2e-1") == 200  # GitHub redelivery: nothing more

    def submitted() -> list[dict[str, Any]]:
        return [r for r in fake_github.reviews("octo", "repo", 1) if r["state"] != "PENDING"]

    wait_until(lambda: len(submitted()) == 1, lambda: (tmp_path / "serve.log").read_text()[-3000:])
    [review] = submitted()
    comments = [c for c in fake_github.review_comments.values() if c["pull_request_review_id"] == review["id"]]
    assert [(c["path"], c["line"]) for c in comments] == [("app/users.py", 2)]
    assert "Cited a line outside the diff" in review["body"]
    assert "Cited a file outside the PR" not in review["body"]  # its code is not in this change: counted only
    assert "1 finding dropped: their code is not in this change." in review["body"]
    assert "yarn.lock" in review["body"]
    assert review["commit_id"] == HEAD
    wait_until(lambda: any(c.get("conclusion") for c in fake_github.check_runs.values()))
    time.sleep(0.5)
    assert len(submitted()) == 1
    assert len(fake_claude.first_turns) == 1
    log = (tmp_path / "serve.log").read_text()
    messages = [json.loads(line).get("msg", "") for line in log.splitlines() if line.startswith("{")]
    # A whole-word 422: the server's own port (e.g. "127.0.0.1:42243") is not a rejected review.
    rejected = [m for m in messages if re.search(r"\b422\b|Unprocessable", m)]
    assert messages and not rejected, rejected
    assert "Traceback" not in log
    metrics = httpx.get(f"{server}/metrics").text
    assert 'bot_github_api_calls_total{method="POST",status="200"}' in metrics
    assert 'bot_model_tokens_total{kind="input",model="claude-sonnet-5-5"}' in metrics
    assert "bot_github_rate_limit_remaining" in metrics and "bot_model_cost_usd_total" in metrics


def test_bot_sender_and_draft_get_no_review_while_a_normal_pr_does(
    server: str, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    diff = git_diff({"a.py": OLD}, {"a.py": NEW})
    fake_github.add_pull("octo", "repo", diff, number=2, head_sha=HEAD)
    assert _deliver(server, "pull_request", _opened(2, sender_type="Bot", sender_login="dependabot[bot]"),
                    "e2e-bot") == 200  # acknowledged, no job
    fake_github.add_pull("octo", "repo", diff, number=3, head_sha=HEAD, draft=True)
    assert _deliver(server, "pull_request", _opened(3, draft=True), "e2e-draft") == 202  # job runs, then skips
    # One worker takes jobs in order: once a later, normal PR is reviewed, the draft's job has run too.
    fake_github.add_pull("octo", "repo", diff, number=4, head_sha=HEAD)
    fake_claude.queue(Answer(findings=[finding("a.py", 1, title="A problem to post")]))  # a clean PR gets no review
    assert _deliver(server, "pull_request", _opened(4), "e2e-normal") == 202
    wait_until(lambda: any(r["state"] != "PENDING" for r in fake_github.reviews("octo", "repo", 4)))
    assert len(fake_claude.first_turns) == 1
    assert fake_github.reviews("octo", "repo", 2) == [] and fake_github.reviews("octo", "repo", 3) == []
