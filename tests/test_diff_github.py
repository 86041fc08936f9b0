"""Every position `bot.diff.anchor.anchor` returns is accepted by the fake GitHub's review endpoint (over HTTP).

Not covered here: type changes (the fake lists git's two blocks as two files and resolves the first).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.diff.anchor import Anchor, anchor
from bot.diff.parse import parse_diff
from bot.diff.types import Diff
from bot.domain import Side
from tests.fakes.gitdiff import Entry, git_diff
from tests.fakes.github import FakeGitHub

HEAD = "c" * 40


def _api(fake: FakeGitHub, pem: str) -> httpx.Client:
    """A client with an installation token for octo/repo (App JWT -> access token)."""
    now = int(time.time())
    token_jwt = jwt.api_jws.encode(json.dumps({"iss": 1, "iat": now - 60, "exp": now + 540}).encode(), pem, "RS256")
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {token_jwt}"}, timeout=10) as client:
        response = client.post("/app/installations/100/access_tokens", json={})
    assert response.status_code == 201, response.text
    return httpx.Client(base_url=fake.url, headers={"Authorization": f"token {response.json()['token']}"}, timeout=10)


def _comment(a: Anchor) -> dict[str, Any]:
    c = a.comment("finding")
    body: dict[str, Any] = {"path": c.path, "line": c.line, "side": c.side.value, "body": c.body}
    if c.start_line is not None and c.start_side is not None:
        body |= {"start_line": c.start_line, "start_side": c.start_side.value}
    return body


def _numbered(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


BEFORE: dict[str, str | bytes | Entry] = {
    "app.py": _numbered(60),
    "old_name.py": _numbered(20),
    "gone.py": "a\nb\n",
    "crlf.txt": "one\r\ntwo\r\n",
    "run.sh": "echo hi\n",
}
AFTER: dict[str, str | bytes | Entry] = {
    "app.py": _numbered(60).replace("line 5\n", "five\n").replace("line 40\n", "forty\nforty-one\n"),
    "new_name.py": _numbered(20).replace("line 10\n", "ten\n"),
    "added.py": "x = 1\ny = 2\n",
    "crlf.txt": "one\r\n2\r\n",
    "run.sh": Entry("echo hi\n", "100755"),
}


def _anchors(diff: Diff) -> list[Anchor]:
    """Single-line anchors on every commentable line, plus ranges (some narrowed) on both sides."""
    out: list[Anchor] = []
    for f in diff.files:
        for side in (Side.RIGHT, Side.LEFT):
            lines = sorted(f.commentable(side))
            out += [a for n in lines if isinstance(a := anchor(diff, f.path, n, n, side), Anchor)]
            if lines:
                for start, end in ((lines[0], lines[-1]), (1, lines[-1]), (lines[0] - 3, lines[0] + 2)):
                    a = anchor(diff, f.path, start, end, side)
                    if isinstance(a, Anchor):
                        out.append(a)
    return out


def test_every_anchor_is_accepted_by_the_fake_github(fake_github: FakeGitHub, rsa_private_key_pem: str) -> None:
    text = git_diff(BEFORE, AFTER)
    diff = parse_diff(text)
    fake_github.add_pull("octo", "repo", text, head_sha=HEAD)
    anchors = _anchors(diff)
    assert any(a.start_line is not None for a in anchors) and any(a.side is Side.LEFT for a in anchors)
    with _api(fake_github, rsa_private_key_pem) as api:
        review = {"commit_id": HEAD, "event": "COMMENT", "body": "r", "comments": [_comment(a) for a in anchors]}
        ok = api.post("/repos/octo/repo/pulls/1/reviews", json=review)
        assert ok.status_code == 200, ok.text
        outside = {"path": "app.py", "line": 20, "side": "RIGHT", "body": "x"}  # anchor() refuses this one
        assert not isinstance(anchor(diff, "app.py", 20, 20, Side.RIGHT), Anchor)
        bad = api.post("/repos/octo/repo/pulls/1/reviews",
                       json={"commit_id": HEAD, "event": "COMMENT", "body": "r", "comments": [outside]})
        assert bad.status_code == 422


def test_anchor_on_quoted_and_spaced_paths_is_accepted(fake_github: FakeGitHub, rsa_private_key_pem: str) -> None:
    text = git_diff({"with space/基础.py": "a\nb\n"}, {"with space/基础.py": "a\nc\n"})
    diff = parse_diff(text)
    fake_github.add_pull("octo", "repo", text, head_sha=HEAD)
    with _api(fake_github, rsa_private_key_pem) as api:
        ok = api.post("/repos/octo/repo/pulls/1/reviews",
                      json={"commit_id": HEAD, "event": "COMMENT", "body": "r",
                            "comments": [_comment(a) for a in _anchors(diff)]})
    assert ok.status_code == 200, ok.text


SAFE_LINES = ["a", "b", "c", "def f():", "    return 1", "", "ünïcode ✓"]
SAFE_NAMES = ["app.py", "lib/util.py", "docs/readme.md", "x.txt", "lib/deep/mod.go"]


@st.composite
def _safe_trees(draw: st.DrawFn) -> tuple[dict[str, str | bytes | Entry], dict[str, str | bytes | Entry]]:
    """Random base/head trees the fake can read (ASCII names without spaces; no line-break look-alikes)."""
    def content() -> str:
        eol = draw(st.sampled_from(["\n", "\r\n"]))
        return "".join(f"{line}{eol}" for line in draw(st.lists(st.sampled_from(SAFE_LINES), max_size=30)))

    names = draw(st.lists(st.sampled_from(SAFE_NAMES), min_size=1, max_size=4, unique=True))
    before: dict[str, str | bytes | Entry] = {n: content() for n in names if draw(st.booleans())}
    after: dict[str, str | bytes | Entry] = {n: content() if draw(st.booleans()) else before.get(n, "z\n")
                                             for n in names if draw(st.integers(0, 3))}
    return before, after


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(trees=_safe_trees())
def test_random_anchors_are_accepted_by_the_fake_github(
    fake_github: FakeGitHub, rsa_private_key_pem: str, trees: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    text = git_diff(*trees)
    diff = parse_diff(text)
    number = len(fake_github.pulls) + 1
    fake_github.add_pull("octo", "repo", text, number=number, head_sha=HEAD)
    comments = [_comment(a) for a in _anchors(diff)]
    with _api(fake_github, rsa_private_key_pem) as api:
        response = api.post(f"/repos/octo/repo/pulls/{number}/reviews",
                            json={"commit_id": HEAD, "event": "COMMENT", "body": "r", "comments": comments})
    assert response.status_code == 200, (response.text, comments)
