"""The fake GitHub's own strictness: 422s, 406s, JWT and token checks, pagination and fault controls."""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakePull, parse_unified_diff

BEFORE = {
    "app.py": "".join(f"line {n}\n" for n in range(1, 41)),
    "gone.txt": "bye\n",
}
AFTER = {
    "app.py": "".join(
        ("changed 3\n" if n == 3 else f"line {n}\n") + ("added after 30\n" if n == 30 else "")
        for n in range(1, 41)
    ),
    "new.py": "print('hi')\n",
    "logo.png": b"\x89PNG\x00\x01\x02binary",
}
HEAD = "a" * 40


def _jwt(pem: str, iss: Any = 1, iat_offset: int = -60, lifetime: int = 600) -> str:
    now = int(time.time())
    claims = {"iss": iss, "iat": now + iat_offset, "exp": now + iat_offset + lifetime}
    return jwt.api_jws.encode(json.dumps(claims).encode(), pem, "RS256")  # GitHub accepts an integer iss


def _client(fake: FakeGitHub, auth: str | None = None, prefix: str = "") -> httpx.Client:
    headers = {"Authorization": auth} if auth else {}
    return httpx.Client(base_url=fake.url + prefix, headers=headers, timeout=10)


def _token(fake: FakeGitHub, pem: str, body: dict[str, Any] | None = None) -> str:
    with _client(fake, f"Bearer {_jwt(pem)}") as client:
        response = client.post("/app/installations/100/access_tokens", json=body or {})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@functools.cache
def _pull_diff() -> str:
    return git_diff(BEFORE, AFTER)


@pytest.fixture
def pull(fake_github: FakeGitHub) -> FakePull:
    """PR #1 on octo/repo: app.py modified in two hunks, new.py added, gone.txt removed, a binary file."""
    return fake_github.add_pull("octo", "repo", _pull_diff(), head_sha=HEAD)


@pytest.fixture
def api(fake_github: FakeGitHub, rsa_private_key_pem: str) -> httpx.Client:
    """A client authenticated with an installation token for octo/repo."""
    return _client(fake_github, f"token {_token(fake_github, rsa_private_key_pem)}")


def _review(api: httpx.Client, comments: list[dict[str, Any]], commit_id: str = HEAD, **extra: Any) -> httpx.Response:
    body = {"commit_id": commit_id, "event": "COMMENT", "body": "review", "comments": comments, **extra}
    return api.post("/repos/octo/repo/pulls/1/reviews", json=body)


# ------------------------------------------------------------------ diff model


def test_fake_parses_git_diff_into_github_files(pull: FakePull) -> None:
    files = {f.filename: f for f in pull.files}
    assert {name: f.status for name, f in files.items()} == {
        "app.py": "modified", "gone.txt": "removed", "logo.png": "added", "new.py": "added",
    }
    app = files["app.py"]
    assert (app.additions, app.deletions, len(app.hunks)) == (2, 1, 2)
    assert 3 in app.right and 3 in app.left and 31 in app.right
    assert 1 not in app.left  # context lines are RIGHT only
    assert files["logo.png"].binary and files["logo.png"].patch is None
    assert app.patch is not None and app.patch.startswith("@@") and "+++" not in app.patch


def test_rename_gets_previous_filename() -> None:
    text = git_diff({"old/name.py": "x = 1\n" * 20}, {"new/name.py": "x = 1\n" * 19 + "y = 2\n"})
    (file,) = parse_unified_diff(text)
    assert (file.status, file.filename, file.previous_filename) == ("renamed", "new/name.py", "old/name.py")


def test_quoted_spaced_names_and_crlf_content() -> None:
    text = git_diff({"with space/基础.py": "a\r\nb\r\n", "plain.txt": "x\n"},
                    {"with space/基础.py": "a\r\nc\r\n", "plain.txt": "x\ry\n"})
    files = {f.filename: f for f in parse_unified_diff(text)}
    assert set(files) == {"with space/基础.py", "plain.txt"}
    assert (files["with space/基础.py"].right, files["with space/基础.py"].left) == ({1, 2}, {2})
    assert files["plain.txt"].right == {1} and files["plain.txt"].additions == 1  # a lone CR is no line break


# ------------------------------------------------------------------ reviews: 422s


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ({"path": "app.py", "line": 20, "side": "RIGHT"}, "Line could not be resolved"),
        ({"path": "app.py", "line": 2, "side": "LEFT"}, "Line could not be resolved"),
        ({"path": "README.md", "line": 1, "side": "RIGHT"}, "Path could not be resolved"),
        ({"path": "app.py", "line": 31, "side": "RIGHT", "start_line": 3, "start_side": "RIGHT"},
         "Pull request review thread start line must be part of the same hunk as the line."),
        ({"path": "app.py", "line": 4, "side": "RIGHT", "start_line": 5, "start_side": "RIGHT"},
         "Pull request review thread start line must precede the end line."),
    ],
    ids=["outside-diff", "left-context", "unknown-path", "across-hunks", "start-after-end"],
)
def test_bad_comment_rejects_the_whole_review(
    fake_github: FakeGitHub, pull: FakePull, api: httpx.Client, comment: dict[str, Any], error: str
) -> None:
    good = {"path": "app.py", "line": 3, "side": "RIGHT", "body": "fine"}
    response = _review(api, [good, {**comment, "body": "bad"}])
    assert response.status_code == 422
    assert response.json()["message"] == "Unprocessable Entity"
    assert response.json()["errors"] == [error]
    assert fake_github.reviews("octo", "repo", 1) == []
    assert fake_github.review_comments == {}


def test_valid_review_is_stored_with_comments(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    comments = [
        {"path": "app.py", "line": 3, "side": "RIGHT", "body": "added line"},
        {"path": "app.py", "line": 3, "side": "LEFT", "body": "removed line"},
        {"path": "app.py", "line": 5, "side": "RIGHT", "start_line": 2, "start_side": "RIGHT", "body": "range"},
        {"path": "new.py", "line": 1, "side": "RIGHT", "body": "new file"},
        {"path": "gone.txt", "line": 1, "side": "LEFT", "body": "deleted file"},
    ]
    response = _review(api, comments)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "COMMENTED"
    listed = api.get("/repos/octo/repo/pulls/1/comments").json()
    assert [(c["path"], c["line"], c["side"]) for c in listed] == [(c["path"], c["line"], c["side"]) for c in comments]
    assert listed[0]["user"]["login"] == "senior-review[bot]"


def test_wrong_commit_id_and_long_body_are_422(pull: FakePull, api: httpx.Client) -> None:
    response = _review(api, [], commit_id="f" * 40)
    assert response.status_code == 422
    assert response.json()["errors"] == ["The commitOID is not part of the pull request"]
    assert _review(api, [], body="x" * 65_537).status_code == 422
    assert _review(api, [], body="x" * 65_536).status_code == 200


def test_pushed_head_makes_old_commit_id_stale(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    fake_github.push(pull, git_diff(BEFORE, {**BEFORE, "gone.txt": "still here\n"}), "c" * 40)
    assert _review(api, [], commit_id=HEAD).status_code == 422
    assert api.get("/repos/octo/repo/pulls/1").json()["head"]["sha"] == "c" * 40
    bad = _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "x"}], commit_id="c" * 40)
    assert bad.json()["errors"] == ["Path could not be resolved"]


def test_pending_review_can_be_deleted_and_only_one_exists(
    fake_github: FakeGitHub, pull: FakePull, api: httpx.Client
) -> None:
    comment = {"path": "app.py", "line": 3, "side": "RIGHT", "body": "x"}
    first = api.post("/repos/octo/repo/pulls/1/reviews", json={"commit_id": HEAD, "comments": [comment]})
    assert first.json()["state"] == "PENDING"
    assert api.get("/repos/octo/repo/pulls/1/comments").json() == []
    second = api.post("/repos/octo/repo/pulls/1/reviews", json={"commit_id": HEAD, "comments": [comment]})
    assert second.status_code == 422
    assert api.delete(f"/repos/octo/repo/pulls/1/reviews/{first.json()['id']}").status_code == 200
    assert fake_github.reviews("octo", "repo", 1) == []
    posted = _review(api, [comment]).json()
    assert api.delete(f"/repos/octo/repo/pulls/1/reviews/{posted['id']}").status_code == 422


# ------------------------------------------------------------------ pulls, diffs, files, compare, contents


def test_pull_json_is_accepted_by_githubkit(pull: FakePull, api: httpx.Client) -> None:
    from githubkit_schemas.latest.models import PullRequest, PullRequestReviewComment

    data = api.get("/repos/octo/repo/pulls/1").json()
    model = PullRequest.model_validate(data)
    assert model.head.sha == HEAD and model.number == 1
    _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "x"}])
    (comment,) = api.get("/repos/octo/repo/pulls/1/comments").json()
    assert PullRequestReviewComment.model_validate(comment).line == 3


def test_diff_media_type_and_406_too_large(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    diff = api.get("/repos/octo/repo/pulls/1", headers={"Accept": "application/vnd.github.diff"})
    assert diff.status_code == 200 and diff.text == pull.diff_text
    many = "".join(f"diff --git a/f{n} b/f{n}\n--- a/f{n}\n+++ b/f{n}\n@@ -1 +1 @@\n-a\n+b\n" for n in range(301))
    fake_github.add_pull("octo", "repo", many, number=2)
    too_large = api.get("/repos/octo/repo/pulls/2", headers={"Accept": "application/vnd.github.diff"})
    assert too_large.status_code == 406
    assert too_large.json()["errors"] == [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]
    assert "maximum number of files (300)" in too_large.json()["message"]
    long_file = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1,20001 @@\n" + "+x\n" * 20_001
    fake_github.add_pull("octo", "repo", long_file, number=3)
    lines = api.get("/repos/octo/repo/pulls/3", headers={"Accept": "application/vnd.github.diff"})
    assert lines.status_code == 406 and "lines (20000)" in lines.json()["message"]
    assert api.get("/repos/octo/repo/pulls/300", headers={"Accept": "application/vnd.github.diff"}).status_code == 404


def test_files_pagination_with_link_headers(fake_github: FakeGitHub, api: httpx.Client) -> None:
    many = "".join(f"diff --git a/f{n} b/f{n}\n--- a/f{n}\n+++ b/f{n}\n@@ -1 +1 @@\n-a\n+b\n" for n in range(3005))
    fake_github.add_pull("octo", "repo", many, number=5)
    first = api.get("/repos/octo/repo/pulls/5/files")
    assert len(first.json()) == 30
    assert 'rel="next"' in first.headers["link"] and "page=100>; rel=\"last\"" in first.headers["link"]
    names: list[str] = []
    url: str | None = "/repos/octo/repo/pulls/5/files?per_page=500"
    while url:
        page = api.get(url)
        assert len(page.json()) <= 100
        names += [f["filename"] for f in page.json()]
        url = page.links.get("next", {}).get("url")
    assert len(names) == 3000 and names[0] == "f0"
    last = api.get("/repos/octo/repo/pulls/5/files?per_page=100&page=30")
    assert 'rel="prev"' in last.headers["link"] and 'rel="next"' not in last.headers["link"]


def test_files_omit_patch_for_binary_and_oversized(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    fake_github.max_patch_chars = 60
    files = {f["filename"]: f for f in api.get("/repos/octo/repo/pulls/1/files").json()}
    assert "patch" not in files["logo.png"]
    assert "patch" not in files["app.py"]  # longer than 60 characters
    assert files["new.py"]["patch"] == "@@ -0,0 +1 @@\n+print('hi')"
    assert files["gone.txt"]["status"] == "removed"


def test_compare_json_and_diff(fake_github: FakeGitHub, api: httpx.Client) -> None:
    text = git_diff({"a.py": "1\n"}, {"a.py": "2\n"})
    fake_github.set_compare("octo", "repo", "b" * 40, HEAD, status="diverged", diff_text=text, behind_by=2)
    data = api.get(f"/repos/octo/repo/compare/{'b' * 40}...{HEAD}").json()
    assert (data["status"], data["ahead_by"], data["behind_by"]) == ("diverged", 1, 2)
    assert data["files"][0]["patch"].startswith("@@")
    diff = api.get(f"/repos/octo/repo/compare/{'b' * 40}...{HEAD}", headers={"Accept": "application/vnd.github.diff"})
    assert diff.text == text
    assert api.get("/repos/octo/repo/compare/x...y").status_code == 404


def test_contents_base64_and_404(fake_github: FakeGitHub, api: httpx.Client) -> None:
    fake_github.set_file("octo", "repo", "main", ".senior-review.yml", "language: en\n")
    data = api.get("/repos/octo/repo/contents/.senior-review.yml", params={"ref": "main"}).json()
    assert base64.b64decode(data["content"]) == b"language: en\n" and data["encoding"] == "base64"
    assert api.get("/repos/octo/repo/contents/.senior-review.yml").status_code == 200  # default branch
    assert api.get("/repos/octo/repo/contents/.senior-review.yml", params={"ref": "dev"}).status_code == 404


# ------------------------------------------------------------------ authentication


def test_jwt_failures_are_401(fake_github: FakeGitHub, rsa_private_key_pem: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    bad = {
        "wrong key": _jwt(other),
        "expired": _jwt(rsa_private_key_pem, iat_offset=-900),
        "bad iss": _jwt(rsa_private_key_pem, iss=999),
        "too long": _jwt(rsa_private_key_pem, iat_offset=0, lifetime=3600),
        "garbage": "not-a-jwt",
    }
    for name, token in bad.items():
        with _client(fake_github, f"Bearer {token}") as client:
            response = client.get("/app")
        assert response.status_code == 401, name
        assert set(response.json()) >= {"message", "documentation_url"}
    for iss in (1, "1"):
        with _client(fake_github, f"Bearer {_jwt(rsa_private_key_pem, iss=iss)}") as client:
            assert client.get("/app").json()["slug"] == "senior-review"
            assert client.get("/repos/octo/repo/installation").json()["id"] == 100


def test_installation_token_required_and_scoped(
    fake_github: FakeGitHub, rsa_private_key_pem: str, pull: FakePull
) -> None:
    with _client(fake_github) as anonymous:
        assert anonymous.get("/repos/octo/repo/pulls/1").status_code == 401
    with _client(fake_github, "token ghs_wrong") as wrong:
        assert wrong.get("/repos/octo/repo/pulls/1").status_code == 401
    with _client(fake_github, f"Bearer {_jwt(rsa_private_key_pem)}") as app_client:
        assert app_client.get("/repos/octo/repo/pulls/1").status_code == 401  # a JWT is not an installation token
    scoped = _token(fake_github, rsa_private_key_pem, {"repositories": ["other"]})
    fake_github.add_pull("octo", "other", pull.diff_text, number=1)
    with _client(fake_github, f"Bearer {scoped}") as client:
        assert client.get("/repos/octo/other/pulls/1").status_code == 200
        assert client.get("/repos/octo/repo/pulls/1").status_code == 404
    read_only = _token(fake_github, rsa_private_key_pem, {"permissions": {"pull_requests": "read"}})
    with _client(fake_github, f"token {read_only}") as client:
        response = _review(client, [])
        assert response.status_code == 403
        assert response.json()["message"] == "Resource not accessible by integration"
        assert response.headers["x-accepted-github-permissions"] == "pull_requests=write"
    with _client(fake_github, f"Bearer {_jwt(rsa_private_key_pem)}") as app_client:
        assert app_client.post("/app/installations/100/access_tokens",
                               json={"repositories": ["nope"]}).status_code == 422
        assert app_client.post("/app/installations/100/access_tokens",
                               json={"permissions": {"administration": "write"}}).status_code == 422


def test_token_shape_and_expiry(fake_github: FakeGitHub, rsa_private_key_pem: str, pull: FakePull) -> None:
    with _client(fake_github, f"Bearer {_jwt(rsa_private_key_pem)}") as client:
        data = client.post("/app/installations/100/access_tokens", json={"repositories": ["repo"]}).json()
    assert data["token"].startswith("ghs_")
    expires = time.mktime(time.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 3500 < expires - time.time() <= 3601
    fake_github.tokens[data["token"]].expires_at = time.time() - 1
    with _client(fake_github, f"token {data['token']}") as client:
        assert client.get("/repos/octo/repo/pulls/1").status_code == 401


# ------------------------------------------------------------------ comments, reactions, checks, graphql, manifest


def test_issue_comments_reactions_replies_checks(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    created = api.post("/repos/octo/repo/issues/1/comments", json={"body": "summary"})
    assert created.status_code == 201 and created.json()["performed_via_github_app"]["id"] == 1
    cid = created.json()["id"]
    assert api.patch(f"/repos/octo/repo/issues/comments/{cid}", json={"body": "v2"}).json()["body"] == "v2"
    assert [c["body"] for c in api.get("/repos/octo/repo/issues/1/comments").json()] == ["v2"]
    reaction = api.post(f"/repos/octo/repo/issues/comments/{cid}/reactions", json={"content": "eyes"})
    assert reaction.status_code == 201
    again = api.post(f"/repos/octo/repo/issues/comments/{cid}/reactions", json={"content": "eyes"})
    assert again.status_code == 200 and again.json()["id"] == reaction.json()["id"]
    assert api.post(f"/repos/octo/repo/issues/comments/{cid}/reactions", json={"content": "nope"}).status_code == 422
    rid = reaction.json()["id"]
    assert api.delete(f"/repos/octo/repo/issues/comments/{cid}/reactions/{rid}").status_code == 204
    assert fake_github.reactions == {}

    _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "root"}])
    (root,) = api.get("/repos/octo/repo/pulls/1/comments").json()
    reply = api.post(f"/repos/octo/repo/pulls/1/comments/{root['id']}/replies", json={"body": "reply"})
    assert reply.status_code == 201 and reply.json()["in_reply_to_id"] == root["id"]
    thumbs = api.post(f"/repos/octo/repo/pulls/comments/{root['id']}/reactions", json={"content": "+1"})
    assert thumbs.status_code == 201

    run = api.post("/repos/octo/repo/check-runs", json={"name": "review", "head_sha": HEAD, "status": "in_progress"})
    assert run.status_code == 201 and run.json()["pull_requests"][0]["number"] == 1
    done = api.patch(f"/repos/octo/repo/check-runs/{run.json()['id']}", json={"conclusion": "success"})
    assert done.json()["status"] == "completed"
    assert api.post("/repos/octo/repo/check-runs", json={"name": "x"}).status_code == 422

    fake_github.set_permission("octo", "repo", "alice", "write")
    assert api.get("/repos/octo/repo/collaborators/alice/permission").json()["permission"] == "write"
    assert api.get("/repos/octo/repo/collaborators/bob/permission").json()["permission"] == "none"


THREADS = """
query($owner: String!, $repo: String!, $number: Int!) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id isResolved viewerCanResolve path line
          comments(first: 50) {
            nodes { databaseId body author { login } reactions(content: THUMBS_DOWN, first: 20) {
              totalCount nodes { content user { login } } } }
          }
        }
      }
    }
  }
}
"""
RESOLVE = "mutation($threadId: ID!) { resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } } }"


def _graphql(api: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = api.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200  # GraphQL reports errors in the body
    return dict(response.json())


def test_graphql_review_threads_with_replies_and_reactions(fake_github: FakeGitHub, pull: FakePull,
                                                           api: httpx.Client) -> None:
    _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "root"}])
    [root] = fake_github.review_comments.values()
    reply = fake_github.add_review_reply(root["id"], "carol", "@senior-review why?")
    fake_github.react(root["id"], "carol", "-1")
    fake_github.react(root["id"], "dave", "+1")
    data = _graphql(api, THREADS, owner="octo", repo="repo", number=1)
    page = data["data"]["repository"]["pullRequest"]["reviewThreads"]
    assert page["pageInfo"] == {"hasNextPage": False, "endCursor": "1"}
    [thread] = page["nodes"]
    assert (thread["id"], thread["isResolved"], thread["viewerCanResolve"], thread["path"], thread["line"]) == (
        f"PRRT_{root['id']}", False, True, "app.py", 3)
    first, second = thread["comments"]["nodes"]
    assert first["author"] == {"login": "senior-review"}  # a Bot's GraphQL login has no [bot]
    assert first["reactions"] == {"totalCount": 1, "nodes": [{"content": "THUMBS_DOWN", "user": {"login": "carol"}}]}
    assert (second["databaseId"], second["body"]) == (reply["id"], "@senior-review why?")
    assert set(first) == {"databaseId", "body", "author", "reactions"}  # exactly what was selected

    # REST sees the same reactions: the rollup on the comment and the filtered list.
    listed = api.get("/repos/octo/repo/pulls/1/comments").json()
    assert listed[0]["reactions"]["-1"] == 1 and listed[0]["reactions"]["total_count"] == 2
    thumbs = api.get(f"/repos/octo/repo/pulls/comments/{root['id']}/reactions", params={"content": "-1"}).json()
    assert [(r["content"], r["user"]["login"]) for r in thumbs] == [("-1", "carol")]
    assert api.get(f"/repos/octo/repo/pulls/comments/{root['id']}/reactions",
                   params={"content": "meh"}).status_code == 422


def test_graphql_resolve_and_its_errors(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client,
                                        rsa_private_key_pem: str) -> None:
    _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "root"}])
    [root] = fake_github.review_comments.values()
    thread_id = f"PRRT_{root['id']}"
    unknown = _graphql(api, RESOLVE, threadId="PRRT_999999")
    assert unknown["data"] == {"resolveReviewThread": None}
    assert unknown["errors"][0]["type"] == "NOT_FOUND" and "PRRT_999999" in unknown["errors"][0]["message"]
    # A token without pull requests write: FORBIDDEN, HTTP 200, nothing resolved.
    read_only = _token(fake_github, rsa_private_key_pem, {"permissions": {"pull_requests": "read"}})
    with _client(fake_github, f"token {read_only}") as client:
        denied = _graphql(client, RESOLVE, threadId=thread_id)
    assert denied["data"] == {"resolveReviewThread": None}
    assert denied["errors"][0]["type"] == "FORBIDDEN"
    assert denied["errors"][0]["message"] == "Resource not accessible by integration"
    assert fake_github.resolved_threads == set()
    done = _graphql(api, RESOLVE, threadId=thread_id)
    assert done == {"data": {"resolveReviewThread": {"thread": {"id": thread_id, "isResolved": True}}}}
    fake_github.viewer_can_resolve = False
    assert _graphql(api, RESOLVE, threadId=thread_id)["errors"][0]["type"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("query { repository(owner: \"octo\", name: \"repo\") { pullRequest(number: 1) { reviewThreads { "
         "nodes { id } } } } }", "You must provide a `first` or `last` value"),
        ("query { repository(owner: \"octo\", name: \"repo\") { pullRequest(number: 1) { "
         "reviewThreads(first: 101) { nodes { id } } } } }", "exceeds the `first` limit of 100"),
        ("query { repository(owner: \"octo\", name: \"repo\") { pullRequest(number: 1) { "
         "reviewThreads(first: 5) { nodes { id colour } } } } }", "Field 'colour' doesn't exist"),
        ("query { repository(owner: \"octo\", name: \"repo\") { pullRequest(number: 7) { "
         "reviewThreads(first: 5) { nodes { id } } } } }", "Could not resolve to a PullRequest"),
        ("query { repository(owner: \"octo\", name: \"secret\") { pullRequest(number: 1) { number } } }",
         "Could not resolve to a Repository"),
        ("query { repository(owner: ", "Parse error"),
    ],
)
def test_graphql_threads_query_is_strict(pull: FakePull, api: httpx.Client, query: str, message: str) -> None:
    _review(api, [{"path": "app.py", "line": 3, "side": "RIGHT", "body": "root"}])
    data = _graphql(api, query)
    assert message in data["errors"][0]["message"]


def test_manifest_conversion_single_use_and_expiring(fake_github: FakeGitHub) -> None:
    expected = fake_github.add_manifest_code("code1", {"slug": "my-bot"})
    fake_github.add_manifest_code("old", expires_in=-1)
    with _client(fake_github) as client:
        first = client.post("/app-manifests/code1/conversions")
        assert first.status_code == 201 and first.json() == expected and first.json()["slug"] == "my-bot"
        assert {"id", "pem", "webhook_secret", "client_id", "client_secret", "owner", "html_url"} <= set(first.json())
        assert client.post("/app-manifests/code1/conversions").status_code == 404
        assert client.post("/app-manifests/old/conversions").status_code == 404


# ------------------------------------------------------------------ faults, headers, GHES, recording


def test_fault_controls(fake_github: FakeGitHub, pull: FakePull, api: httpx.Client) -> None:
    path = "/repos/octo/repo/pulls/1"
    fake_github.fail_next("GET", r"/pulls/1$", status=502, times=2)
    assert [api.get(path).status_code for _ in range(3)] == [502, 502, 200]
    fake_github.fail_next("GET", r"/pulls/1$", status=500)
    assert api.get(path).status_code == 500
    fake_github.secondary_rate_limit("GET", r"/pulls/1$", retry_after=7)
    limited = api.get(path)
    assert limited.status_code == 403 and limited.headers["retry-after"] == "7"
    assert "secondary rate limit" in limited.json()["message"]
    fake_github.too_many_requests("GET", r"/pulls/1$", retry_after=3)
    assert api.get(path).status_code == 429
    fake_github.primary_rate_limit("GET", r"/pulls/1$", reset_in=30)
    primary = api.get(path)
    assert primary.status_code == 403 and primary.headers["x-ratelimit-remaining"] == "0"
    assert int(primary.headers["x-ratelimit-reset"]) > time.time() + 20
    fake_github.not_accessible("POST", r"/check-runs$", permission="checks=write")
    denied = api.post("/repos/octo/repo/check-runs", json={"name": "n", "head_sha": HEAD})
    assert denied.status_code == 403 and denied.headers["x-accepted-github-permissions"] == "checks=write"
    fake_github.slow("GET", r"/pulls/1$", seconds=0.3)
    started = time.monotonic()
    assert api.get(path).status_code == 200
    assert time.monotonic() - started >= 0.3
    fake_github.drop_connection("GET", r"/pulls/1$")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(path)
    assert api.get(path).status_code == 200  # faults are consumed; the connection pool recovers


def test_rate_limit_headers_ghes_prefix_and_recording(
    fake_github: FakeGitHub, rsa_private_key_pem: str, pull: FakePull
) -> None:
    token = _token(fake_github, rsa_private_key_pem)
    with _client(fake_github, f"token {token}", prefix="/api/v3") as ghes:
        response = ghes.get("/repos/octo/repo/pulls/1", params={"x": "1"})
    assert response.status_code == 200
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used",
            "x-ratelimit-resource"} <= set(response.headers)
    recorded = fake_github.requests_to("GET", r"/pulls/1$")[-1]
    assert (recorded.path, recorded.raw_path, recorded.query) == (
        "/repos/octo/repo/pulls/1", "/api/v3/repos/octo/repo/pulls/1", {"x": "1"}
    )
    assert recorded.headers["authorization"] == f"token {token}"
    with _client(fake_github) as client:
        assert "x-ratelimit-remaining" in client.get("/nowhere").headers


def test_graphql_objects_answer_only_what_is_selected_and_hide_other_repositories() -> None:
    from tests.fakes.github_objects import answer_repository_objects

    files = {("octo", "repo", "s1", "a/b.py"): b"x = 1\n", ("octo", "repo", "s1", "a/c/d.py"): b""}
    query = """query($e: String!, $t: String!) { repository(owner: "octo", name: "repo") {
        f: object(expression: $e) { ... on Blob { text } }
        t: object(expression: $t) { ... on Tree { entries { name type } } }
        wrong: object(expression: $e) { ... on Tree { entries { name } } } } }"""
    answer = answer_repository_objects(query, {"e": "s1:a/b.py", "t": "s1:a"}, files, {("octo", "repo")})
    assert answer == {"data": {"repository": {
        "f": {"text": "x = 1\n"},
        "t": {"entries": [{"name": "b.py", "type": "blob"}, {"name": "c", "type": "tree"}]},
        "wrong": {},  # a blob under a Tree-only fragment is an empty object, as in any GraphQL server
    }}}
    hidden = answer_repository_objects(query, {"e": "s1:a/b.py", "t": "s1:a"}, files, set())
    assert hidden["data"] == {"repository": None} and hidden["errors"][0]["type"] == "NOT_FOUND"
    assert "errors" in answer_repository_objects("query { repository(", {}, files, set())
    assert "errors" in answer_repository_objects(query, {"e": "s1:a/b.py"}, files, {("octo", "repo")})
