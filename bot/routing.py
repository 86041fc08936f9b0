"""Webhook routing: a declarative table (event, action) -> pure handler(payload) -> job specs.

Handlers read plain JSON fields (githubkit's strict webhook models reject many real payloads).

Decisions:
- Drafts: a draft pull request still yields a `review` job, with `draft: true` in its data. Whether drafts are
  reviewed is repository configuration, known only at job time, so the pipeline skips a draft unless the
  configuration opts in (it re-reads the PR anyway; the event's copy may be stale).
- Bots: a sender of type "Bot" or a login ending in "[bot]" (this App included) creates no jobs at all, neither
  reviews nor commands (no bot-to-bot loops).
- `closed` yields a `cancel` spec: the store cancels the PR's queued jobs in the intake transaction.
- Decoding (`decode`): a webhook body is decoded by msgspec into a view of only the fields its event's handlers
  read (everything else, e.g. the three repository objects of a pull_request event, is skipped unparsed). Leaves
  stay `Any` so the handlers' own checks give the precise error; a container of the wrong type is a
  `PayloadError` at decoding. A body the fast decoder refuses but the standard library reads (e.g. a lone UTF-16
  surrogate escape) is decoded by `json` instead: a faster parser never turns away what the reference accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from bot.domain import is_bot
from bot.store.types import JobKind, JobSpec

Payload = Mapping[str, Any]
RouteHandler = Callable[[Payload], list[JobSpec]]


class PayloadError(ValueError):
    """A routed payload lacks a field its handler needs (answered 400, nothing recorded)."""


@dataclass(frozen=True, slots=True)
class Routed:
    """What routing decided: whether the (event, action) is known, and the job specs to record."""

    known: bool
    specs: tuple[JobSpec, ...] = ()


def _get(payload: Payload, *path: str) -> Any:
    value: Any = payload
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            raise PayloadError("payload lacks " + ".".join(path))
        value = value[name]
    return value


def _str(payload: Payload, *path: str) -> str:
    value = _get(payload, *path)
    if not isinstance(value, str) or not value:
        raise PayloadError(".".join(path) + " is not a non-empty string")
    return value


def _int(payload: Payload, *path: str) -> int:
    value = _get(payload, *path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(".".join(path) + " is not an integer")
    return value


def _installation_id(payload: Payload) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, Mapping) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None


def _from_bot(user: Any) -> bool:
    """A payload's user object is a bot account (`bot.domain.is_bot`); anything but an object is not."""
    if not isinstance(user, Mapping):
        return False
    return is_bot(str(user.get("login") or ""), str(user.get("type") or ""))


def _spec(payload: Payload, kind: str, pr: int, head_sha: str | None, data: Mapping[str, Any]) -> JobSpec:
    event_action = f"{payload.get('_event', '')}.{payload.get('action', '')}".strip(".")
    return JobSpec(
        kind=kind,
        installation_id=_installation_id(payload),
        owner=_str(payload, "repository", "owner", "login"),
        repo=_str(payload, "repository", "name"),
        pr=pr,
        trigger=event_action,
        head_sha=head_sha,
        data=data,
    )


def review_pull_request(payload: Payload) -> list[JobSpec]:
    """A `review` job at the event's head sha (drafts flagged, bots ignored)."""
    if _from_bot(payload.get("sender")):
        return []
    pull = _get(payload, "pull_request")
    if not isinstance(pull, Mapping):
        raise PayloadError("pull_request is not an object")
    data = {"draft": bool(pull.get("draft", False))}
    return [_spec(payload, JobKind.REVIEW, _int(pull, "number"), _str(pull, "head", "sha"), data)]


def review_if_base_changed(payload: Payload) -> list[JobSpec]:
    """`edited` matters only when the base branch changed (`changes.base`)."""
    changes = payload.get("changes")
    if not isinstance(changes, Mapping) or "base" not in changes:
        return []
    return review_pull_request(payload)


def cancel_pull_request(payload: Payload) -> list[JobSpec]:
    """A closed PR: cancel its queued jobs."""
    number = _int(payload, "pull_request", "number")
    return [_spec(payload, JobKind.CANCEL, number, None, {})]


def _comment_command(payload: Payload, pr: int, source: str) -> list[JobSpec]:
    comment = _get(payload, "comment")
    if not isinstance(comment, Mapping) or _from_bot(comment.get("user")) or _from_bot(payload.get("sender")):
        return []
    body = comment.get("body") or ""
    data = {
        "source": source,
        "comment_id": _int(comment, "id"),
        "body": body if isinstance(body, str) else "",
        "author": _str(comment, "user", "login"),
        "author_type": str(_get(comment, "user").get("type") or "User"),
        "author_association": str(comment.get("author_association") or ""),
        "in_reply_to_id": comment.get("in_reply_to_id"),
        "created_at": str(comment.get("created_at") or ""),  # a command older than the replay window is ignored
    }
    return [_spec(payload, JobKind.COMMAND, pr, None, data)]


def command_from_issue_comment(payload: Payload) -> list[JobSpec]:
    """A comment on a pull request's conversation may be a command; comments on plain issues are ignored."""
    issue = _get(payload, "issue")
    if not isinstance(issue, Mapping) or not issue.get("pull_request"):
        return []
    return _comment_command(payload, _int(issue, "number"), "issue_comment")


def command_from_review_comment(payload: Payload) -> list[JobSpec]:
    """A review (inline) comment may be a command, e.g. a reply in a finding's thread."""
    return _comment_command(payload, _int(payload, "pull_request", "number"), "review_comment")


def thread_state_changed(payload: Payload) -> list[JobSpec]:
    """A person resolved or unresolved a review thread: the findings marked in its comments change state.

    The comments travel in the job (authors and bodies); the handler trusts only the App's own comments. A bot's
    resolution (the App's own, after a fix or a dismissal) makes no job: the App already recorded why.
    """
    if _from_bot(payload.get("sender")):
        return []
    thread = _get(payload, "thread")
    comments = thread.get("comments") if isinstance(thread, Mapping) else None
    if not isinstance(comments, list):
        return []
    state = "resolved" if payload.get("action") == "resolved" else "open"
    kept = [
        {"author": str((c.get("user") or {}).get("login") or ""), "body": str(c.get("body") or "")[:70_000]}
        for c in comments[:100]
        if isinstance(c, Mapping)
    ]
    sender = _get(payload, "sender")
    login = str(sender.get("login") or "") if isinstance(sender, Mapping) else ""
    return [_spec(payload, JobKind.THREAD, _int(payload, "pull_request", "number"), None,
                  {"state": state, "comments": kept, "sender": login})]


def ignore(payload: Payload) -> list[JobSpec]:
    """A known event the bot does not act on (logged and counted)."""
    return []


ROUTES: dict[tuple[str, str | None], RouteHandler] = {
    ("pull_request", "opened"): review_pull_request,
    ("pull_request", "reopened"): review_pull_request,
    ("pull_request", "ready_for_review"): review_pull_request,
    ("pull_request", "synchronize"): review_pull_request,
    ("pull_request", "edited"): review_if_base_changed,
    ("pull_request", "closed"): cancel_pull_request,
    ("issue_comment", "created"): command_from_issue_comment,
    ("pull_request_review_comment", "created"): command_from_review_comment,
    ("pull_request_review_thread", "resolved"): thread_state_changed,
    ("pull_request_review_thread", "unresolved"): thread_state_changed,
    ("installation", None): ignore,
    ("installation_repositories", None): ignore,
    ("github_app_authorization", None): ignore,
}


class BodyError(ValueError):
    """A webhook body that is not a JSON object (malformed, or nested absurdly deep)."""


# -- decoding: the fields the handlers read, per event; UNSET (absent) fields are left out of the result -------


class _User(Struct, omit_defaults=True):
    login: Any = UNSET
    type: Any = UNSET


class _Installation(Struct, omit_defaults=True):
    id: Any = UNSET


class _Repository(Struct, omit_defaults=True):
    name: Any = UNSET
    owner: _User | UnsetType | None = UNSET


class _Head(Struct, omit_defaults=True):
    sha: Any = UNSET


class _PullRequest(Struct, omit_defaults=True):
    number: Any = UNSET
    draft: Any = UNSET
    head: _Head | UnsetType | None = UNSET


class _Comment(Struct, omit_defaults=True):
    id: Any = UNSET
    body: Any = UNSET
    user: _User | UnsetType | None = UNSET
    author_association: Any = UNSET
    in_reply_to_id: Any = UNSET
    created_at: Any = UNSET


class _Issue(Struct, omit_defaults=True):
    number: Any = UNSET
    pull_request: Any = UNSET  # its presence (an object of links) is what marks a PR's conversation


class _Event(Struct, omit_defaults=True):
    """An event the bot does not read beyond its action (the body is still checked to be a JSON object)."""

    action: Any = UNSET


class _Ping(Struct, omit_defaults=True):
    zen: Any = UNSET


class _Common(Struct, omit_defaults=True):
    action: Any = UNSET
    sender: _User | UnsetType | None = UNSET
    installation: _Installation | UnsetType | None = UNSET
    repository: _Repository | UnsetType | None = UNSET


class _PullRequestEvent(_Common, omit_defaults=True):
    pull_request: _PullRequest | UnsetType | None = UNSET
    changes: Any = UNSET


class _IssueCommentEvent(_Common, omit_defaults=True):
    issue: _Issue | UnsetType | None = UNSET
    comment: _Comment | UnsetType | None = UNSET


class _ReviewCommentEvent(_Common, omit_defaults=True):
    pull_request: _PullRequest | UnsetType | None = UNSET
    comment: _Comment | UnsetType | None = UNSET


class _ThreadEvent(_Common, omit_defaults=True):
    pull_request: _PullRequest | UnsetType | None = UNSET
    thread: Any = UNSET  # rare and small: its comments are read leniently by the handler


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "pull_request": msgspec.json.Decoder(_PullRequestEvent),
    "issue_comment": msgspec.json.Decoder(_IssueCommentEvent),
    "pull_request_review_comment": msgspec.json.Decoder(_ReviewCommentEvent),
    "pull_request_review_thread": msgspec.json.Decoder(_ThreadEvent),
    "ping": msgspec.json.Decoder(_Ping),
}
_ANY_EVENT: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Event)


def decode(event: str, body: bytes) -> dict[str, Any]:
    """The fields of `body` that routing reads for `event`, as plain JSON values.

    BodyError when the body is not a JSON object or nests deeper than the interpreter's recursion limit;
    PayloadError when a field routing reads is a container of the wrong type.
    """
    try:
        view = _DECODERS.get(event, _ANY_EVENT).decode(body)
    except msgspec.ValidationError as exc:  # "... - at `$.pull_request`": a field; no path: the body itself
        raise (PayloadError if " - at `$" in str(exc) else BodyError)(str(exc)) from None
    except msgspec.DecodeError:
        return _decode_with_json(body)
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    fields: dict[str, Any] = msgspec.to_builtins(view)
    return fields


def _decode_with_json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    except ValueError:
        raise BodyError("body is not JSON") from None
    if not isinstance(payload, dict):
        raise BodyError("body is not a JSON object")
    return payload


def route(event: str, payload: Payload) -> Routed:
    """Look up (event, action), falling back to (event, None); unknown pairs yield `Routed(known=False)`."""
    action = payload.get("action")
    action = action if isinstance(action, str) else None
    handler = ROUTES.get((event, action)) or ROUTES.get((event, None))
    if handler is None:
        return Routed(known=False)
    return Routed(known=True, specs=tuple(handler({**payload, "_event": event})))
