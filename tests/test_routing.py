"""Routing: (event, action) -> job specs, from built payloads and every real payload in the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import is_bot
from bot.routing import ROUTES, BodyError, PayloadError, decode, route
from tests.helpers_server import pr_payload


def kinds(event: str, payload: dict[str, Any]) -> list[str]:
    return [spec.kind for spec in route(event, payload).specs]


@pytest.mark.parametrize("action", ["opened", "reopened", "ready_for_review", "synchronize"])
def test_review_triggers(action: str) -> None:
    (spec,) = route("pull_request", pr_payload(action, number=12, sha="c" * 40)).specs
    assert (spec.kind, spec.key, spec.head_sha, spec.trigger) == ("review", "octo/hello#12", "c" * 40,
                                                                   f"pull_request.{action}")
    assert spec.installation_id == 42 and spec.owner == "octo" and spec.repo == "hello" and spec.pr == 12
    payload = spec.payload("d-1")
    assert payload["delivery_id"] == "d-1" and payload["draft"] is False and payload["installation_id"] == 42


def test_edited_reviews_only_when_the_base_changed() -> None:
    assert kinds("pull_request", pr_payload("edited", changes={"title": {"from": "x"}})) == []
    assert kinds("pull_request", pr_payload("edited", changes={"base": {"ref": {"from": "dev"}}})) == ["review"]


def test_drafts_are_flagged_for_the_pipeline() -> None:
    (spec,) = route("pull_request", pr_payload(draft=True)).specs
    assert spec.data["draft"] is True


@pytest.mark.parametrize(
    ("sender_type", "login"),
    [("Bot", "dependabot[bot]"), ("User", "senior-review[bot]"), ("bot", "ci"), ("User", "Renovate[BOT]")],
)
def test_bot_senders_create_no_jobs(sender_type: str, login: str) -> None:
    # The same rule as for commands (`bot.domain.is_bot`): GitHub logins and types compare case-insensitively.
    routed = route("pull_request", pr_payload(sender_type=sender_type, sender_login=login))
    assert routed.known and routed.specs == ()
    assert is_bot(login, sender_type) and not is_bot("bot", "User")


def _sender_is_bot(payload: dict[str, Any]) -> bool:
    sender = payload.get("sender") or {}
    return is_bot(str(sender.get("login") or ""), str(sender.get("type") or ""))


def test_closed_cancels() -> None:
    (spec,) = route("pull_request", pr_payload("closed", number=3)).specs
    assert (spec.kind, spec.key) == ("cancel", "octo/hello#3")


def test_comment_commands() -> None:
    base = {"repository": {"name": "r", "owner": {"login": "o"}}, "installation": {"id": 1},
            "sender": {"login": "alice", "type": "User"}, "action": "created"}
    comment = {"id": 77, "body": "@senior-review review", "user": {"login": "alice", "type": "User"}}
    on_pr = {**base, "issue": {"number": 5, "pull_request": {"url": "u"}}, "comment": comment}
    (spec,) = route("issue_comment", on_pr).specs
    assert (spec.kind, spec.key, spec.data["comment_id"], spec.data["body"], spec.data["author"]) == (
        "command", "o/r#5", 77, "@senior-review review", "alice")
    assert route("issue_comment", {**on_pr, "issue": {"number": 5}}).specs == ()  # a plain issue
    inline = {**base, "pull_request": {"number": 6}, "comment": {**comment, "in_reply_to_id": 70}}
    (spec,) = route("pull_request_review_comment", inline).specs
    assert (spec.key, spec.data["in_reply_to_id"], spec.data["source"]) == ("o/r#6", 70, "review_comment")
    bot_comment = {**on_pr, "comment": {**comment, "user": {"login": "x[bot]", "type": "Bot"}}}
    assert route("issue_comment", bot_comment).specs == ()


def test_unknown_and_ignored() -> None:
    assert not route("deployment", {"action": "created"}).known
    assert not route("pull_request", {"action": "labeled"}).known
    assert route("installation", {"action": "created"}) .known
    assert route("installation", {"action": "created"}).specs == ()


def test_missing_fields_raise_payload_error() -> None:
    with pytest.raises(PayloadError):
        route("pull_request", {"action": "opened", "pull_request": {"number": "1"}})
    with pytest.raises(PayloadError):
        route("pull_request", {"action": "opened"})


def test_table_is_declarative() -> None:
    assert all(callable(handler) for handler in ROUTES.values())
    assert ("pull_request", "synchronize") in ROUTES


EXPECTED = {
    "pull_request.opened": ["review"],
    "pull_request.reopened": ["review"],
    "pull_request.synchronize": ["review"],
    "pull_request.ready_for_review": ["review"],
    "pull_request.closed": ["cancel"],
    "pull_request_review_comment.created": ["command"],
    "pull_request_review_thread.resolved": ["thread"],
}


def test_every_payload_routes(webhook_dir: Path) -> None:
    files = sorted(webhook_dir.glob("*.json"))
    assert files
    for path in files:
        event = path.name.split(".", 1)[0]
        payload = json.loads(path.read_text())
        routed = route(event, payload)
        prefix = ".".join(path.name.split(".")[:2])
        if prefix in EXPECTED and not _sender_is_bot(payload):
            assert [s.kind for s in routed.specs] == EXPECTED[prefix], path.name
        if prefix == "issue_comment.created":
            on_pr = bool(payload["issue"].get("pull_request"))
            assert [s.kind for s in routed.specs] == (["command"] if on_pr and not _sender_is_bot(payload) else []), (
                path.name)
        for spec in routed.specs:
            assert spec.owner and spec.repo and spec.pr > 0, path.name
            assert spec.kind != "review" or (spec.head_sha and len(spec.head_sha) == 40), path.name


def _outcome(event: str, payload: Any) -> Any:
    """What routing makes of a payload: its specs, or that it raised PayloadError."""
    try:
        routed = route(event, payload)
    except PayloadError:
        return PayloadError
    return routed.known, routed.specs


def test_decoding_only_routing_fields_routes_every_payload_as_the_whole_payload_does(webhook_dir: Path) -> None:
    files = sorted(webhook_dir.glob("*.json"))
    for path in files:
        event = path.name.split(".", 1)[0]
        body = json.dumps(json.loads(path.read_bytes()), separators=(",", ":")).encode()  # as GitHub sends it
        fields = decode(event, body)
        assert _outcome(event, fields) == _outcome(event, json.loads(body)), path.name
        assert len(json.dumps(fields)) < len(body) / 2 or event not in ROUTED_EVENTS, path.name  # the rest skipped


ROUTED_EVENTS = ("pull_request", "issue_comment", "pull_request_review_comment", "pull_request_review_thread")
_leaf = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


_user = st.fixed_dictionaries({"login": st.sampled_from(["alice", "ci[bot]", "Bob"]),
                                "type": st.sampled_from(["User", "Bot", "Organization"])})
_comment = st.fixed_dictionaries({
    "id": st.integers(1, 9), "body": st.text(max_size=20), "user": _user, "author_association": _leaf,
    "in_reply_to_id": st.none() | st.integers(1, 9), "created_at": st.just("2026-01-01T00:00:00Z"), "url": _leaf})
# Every field routing reads, valid: then a few of them deleted or replaced by anything JSON.
_valid = st.fixed_dictionaries({
    "action": st.sampled_from(["opened", "synchronize", "edited", "closed", "created", "resolved", "labeled"]),
    "sender": _user,
    "installation": st.fixed_dictionaries({"id": st.integers(1, 9)}),
    "repository": st.fixed_dictionaries({"name": st.sampled_from(["r", "hello"]), "owner": _user, "id": _leaf}),
    "pull_request": st.fixed_dictionaries({
        "number": st.integers(1, 9), "draft": st.booleans(), "head": st.fixed_dictionaries({"sha": st.just("c" * 40)}),
        "title": _leaf}),
    "changes": st.sampled_from([{}, {"base": {"ref": {"from": "dev"}}}, {"title": {"from": "x"}}]),
    "issue": st.fixed_dictionaries({"number": st.integers(1, 9)}, optional={"pull_request": _leaf}),
    "comment": _comment,
    "thread": st.fixed_dictionaries({"comments": st.lists(_comment, max_size=2)}),
    "noise": _leaf,
})
_PATHS = [("action",), ("sender",), ("sender", "login"), ("sender", "type"), ("installation",), ("installation", "id"),
          ("repository",), ("repository", "name"), ("repository", "owner"), ("repository", "owner", "login"),
          ("pull_request",), ("pull_request", "number"), ("pull_request", "draft"), ("pull_request", "head"),
          ("pull_request", "head", "sha"), ("changes",), ("issue",), ("issue", "number"), ("issue", "pull_request"),
          ("comment",), ("comment", "id"), ("comment", "body"), ("comment", "user"), ("comment", "user", "login"),
          ("comment", "user", "type"), ("comment", "author_association"), ("comment", "in_reply_to_id"),
          ("comment", "created_at"), ("thread",), ("thread", "comments")]
_DELETE = object()


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = draw(_valid)
    for path in draw(st.lists(st.sampled_from(_PATHS), max_size=3)):
        parent: Any = payload
        for name in path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            value = draw(st.just(_DELETE) | st.none() | _leaf)
            if value is _DELETE:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
    return payload


@settings(max_examples=400, deadline=None)
@given(event=st.sampled_from([*ROUTED_EVENTS, "installation", "deployment"]), payload=_payloads())
def test_decoded_fields_route_like_the_whole_payload(event: str, payload: dict[str, Any]) -> None:
    """Whatever is missing or of another type, the decoded view routes like the whole JSON; only a container
    routing reads that is neither an object nor null is refused at decoding (PayloadError, as routing would)."""
    body = json.dumps(payload).encode()
    try:
        fields = decode(event, body)
    except PayloadError as exc:
        assert " - at `$." in str(exc)
        return
    assert _outcome(event, fields) == _outcome(event, payload)


@pytest.mark.parametrize("body", [b'{"pull_request": "x"}', b'{"sender": [1]}', b'{"repository": {"owner": 3}}',
                                  b'{"pull_request": {"head": true}}'])
def test_a_routing_container_of_the_wrong_type_is_a_payload_error_naming_it(body: bytes) -> None:
    with pytest.raises(PayloadError, match=r"at `\$\."):
        decode("pull_request", body)


def test_events_routing_does_not_read_still_need_a_json_object() -> None:
    assert decode("deployment", b'{"action": "created", "deployment": {"id": 1}}') == {"action": "created"}
    with pytest.raises(BodyError):
        decode("deployment", b"[]")
    with pytest.raises(BodyError):
        decode("deployment", b'{"action": "created",}')


def test_a_thread_the_app_resolved_itself_makes_no_job() -> None:
    thread = {"node_id": "PRRT_1", "comments": [{"user": {"login": "senior-review[bot]"}, "body": "x"}]}
    base = {"action": "resolved", "installation": {"id": 1}, "pull_request": {"number": 2}, "thread": thread,
            "repository": {"name": "hello", "owner": {"login": "octo"}}}
    by_app = route("pull_request_review_thread", {**base, "sender": {"login": "senior-review[bot]", "type": "Bot"}})
    assert by_app.known and by_app.specs == ()
    by_person = route("pull_request_review_thread", {**base, "sender": {"login": "maint", "type": "User"}})
    assert [s.kind for s in by_person.specs] == ["thread"]
