"""End to end: the real `serve` process, restarted after downtime, asks GitHub (the fake) to redeliver the webhook
that failed and catches up on the pull request whose webhook never came; a second restart does nothing twice."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakePull
from tests.fakes.github_reconcile import Deliveries
from tests.helpers_server import SECRET, child_env, free_port, start_process, stop_process, wait_http
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

DIFF = git_diff({"app/users.py": "def f(x):\n    return x\n"}, {"app/users.py": "def f(x):\n    return x + 1\n"})


def _opened(fake: FakeGitHub, pull: FakePull) -> dict[str, Any]:
    return {"action": "opened", "number": pull.number, "pull_request": fake.pull_json(pull),
            "repository": {"name": pull.repo, "full_name": f"{pull.owner}/{pull.repo}", "owner": {"login": "octo"}},
            "installation": {"id": 100}, "sender": {"login": pull.author, "type": "User"}}


def test_a_restarted_server_redelivers_and_catches_up_once(
    fake_github: FakeGitHub, github_deliveries: Deliveries, fake_claude: FakeClaude, rsa_private_key_pem: str,
    tmp_path: Path,
) -> None:
    key = tmp_path / "app.pem"
    key.write_text(rsa_private_key_pem)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(DATA_DIR=str(tmp_path / "data"), PORT=str(port), GITHUB_APP_ID="1",
                    GITHUB_APP_PRIVATE_KEY_FILE=str(key), GITHUB_WEBHOOK_SECRET=SECRET,
                    GITHUB_API_URL=fake_github.url, ANTHROPIC_API_KEY=fake_claude.api_key,
                    ANTHROPIC_BASE_URL=fake_claude.base_url, LOG_FORMAT="json", WORKERS="1")
    github_deliveries.configure(f"{base}/webhook", SECRET)
    fake_claude.default = Answer(findings=[finding("app/users.py", 2)])  # a finding, so each review is posted
    # While the server was down: #1's webhook failed, #2's never came, #3 is a draft.
    first = fake_github.add_pull("octo", "repo", DIFF, number=1, head_sha="1" * 40)
    failed = github_deliveries.log("pull_request", _opened(fake_github, first), status_code=502)
    fake_github.add_pull("octo", "repo", DIFF, number=2, head_sha="2" * 40)
    fake_github.add_pull("octo", "repo", DIFF, number=3, head_sha="3" * 40, draft=True)
    log = tmp_path / "serve.log"

    def reviews(number: int) -> list[dict[str, Any]]:
        return [r for r in fake_github.reviews("octo", "repo", number) if r["state"] != "PENDING"]

    def serve_until(condition: Callable[[], bool]) -> None:
        process: subprocess.Popen[bytes] = start_process(["-m", "bot", "serve"], env, log)
        try:
            wait_http(f"{base}/readyz", process=process)
            wait_until(condition, lambda: log.read_text()[-3000:])
            assert github_deliveries.wait_idle()
        finally:
            stop_process(process)

    serve_until(lambda: len(reviews(1)) == 1 and len(reviews(2)) == 1
                and len(fake_github.requests_to("GET", r"^/repos/octo/other/pulls$")) == 1)

    assert github_deliveries.redelivery_requests == [failed["id"]]
    assert [a["status_code"] for a in github_deliveries.attempts(failed["guid"])] == [502, 202]
    assert reviews(3) == []

    listings = len(fake_github.requests_to("GET", r"^/repos/octo/other/pulls$"))
    serve_until(lambda: len(fake_github.requests_to("GET", r"^/repos/octo/other/pulls$")) == listings + 1)

    assert github_deliveries.redelivery_requests == [failed["id"]]
    assert (len(reviews(1)), len(reviews(2)), len(reviews(3))) == (1, 1, 0)
    assert "Traceback" not in log.read_text()
