"""Plain results of GitHub calls, and the pure shaping of their JSON (no I/O, no githubkit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain import InlineComment, NotReviewed
from bot.sanitize import code_span

MAX_REVIEW_BODY = 65_536


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """The App as GitHub knows it: `slug` is the @-mention name, `id` marks the bot's own comments."""

    id: int
    slug: str
    name: str

    @property
    def bot_login(self) -> str:
        """The login of the App's bot user (`slug[bot]`)."""
        return f"{self.slug}[bot]"


@dataclass(frozen=True, slots=True)
class RawDiff:
    """A pull request's diff: the unified text, or (diff too large) the files API entries."""

    text: str | None
    file_entries: tuple[Mapping[str, Any], ...] | None = None
    not_reviewed: tuple[NotReviewed, ...] = ()


@dataclass(frozen=True, slots=True)
class Comparison:
    """`base...head`: GitHub's status (ahead, behind, diverged, identical), counts and the diff."""

    status: str
    ahead_by: int
    behind_by: int
    diff_text: str | None
    file_entries: tuple[Mapping[str, Any], ...] | None = None
    not_reviewed: tuple[NotReviewed, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    """A submitted or pending review."""

    id: int
    author: str
    state: str
    body: str
    commit_id: str
    is_own: bool


@dataclass(frozen=True, slots=True)
class ReviewComment:
    """A review (inline) comment; `is_own` when the bot wrote it."""

    id: int
    path: str
    line: int | None
    side: str | None
    start_line: int | None
    body: str
    author: str
    in_reply_to_id: int | None
    review_id: int | None
    commit_id: str
    is_own: bool


@dataclass(frozen=True, slots=True)
class IssueComment:
    """A conversation comment on the pull request."""

    id: int
    body: str
    author: str
    is_own: bool


@dataclass(frozen=True, slots=True)
class PostedReview:
    """What `post_review` achieved: the review id, the inline comments placed and those moved to the body."""

    id: int
    html_url: str
    inline: tuple[InlineComment, ...]
    moved_to_body: tuple[InlineComment, ...]
    overflow: tuple[InlineComment, ...]


@dataclass(frozen=True, slots=True)
class CheckRun:
    """A check run created by the bot."""

    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None


@dataclass(frozen=True, slots=True)
class ReviewThread:
    """A review thread (GraphQL), identified by its node id; `comment_ids` in thread order."""

    id: str
    is_resolved: bool
    viewer_can_resolve: bool
    comment_ids: tuple[int, ...]


def comment_json(comment: InlineComment) -> dict[str, Any]:
    data: dict[str, Any] = {"path": comment.path, "line": comment.line, "side": str(comment.side),
                            "body": comment.body}
    if comment.start_line is not None and comment.start_line != comment.line:
        data["start_line"] = comment.start_line
        data["start_side"] = str(comment.start_side or comment.side)
    return data


def review_body(body: str, moved: Sequence[InlineComment], overflow: Sequence[InlineComment]) -> str:
    """The review body with file-level notes appended; trimmed to GitHub's 65,536 characters if it must be."""
    parts = [body]
    if moved:
        parts.append(_notes("Findings GitHub could not attach to a diff line", moved))
    if overflow:
        parts.append(_notes("More findings", overflow))
    text = "\n\n".join(p for p in parts if p)
    if len(text) > MAX_REVIEW_BODY:
        note = "\n\n… (truncated: GitHub limits a review body to 65,536 characters)"
        # Cut at a paragraph break: a cut inside a code span could turn `@name` into a live mention.
        cut = text.rfind("\n\n", 0, MAX_REVIEW_BODY - len(note))
        text = text[: cut if cut > 0 else MAX_REVIEW_BODY - len(note)] + note
    return text


def _notes(title: str, comments: Sequence[InlineComment]) -> str:
    """The JSON GitHub expects for one inline comment of a review."""
    lines = [f"<details open><summary><b>{title} ({len(comments)})</b></summary>", ""]
    for c in comments:
        where = f"lines {c.start_line}–{c.line}" if c.start_line and c.start_line != c.line else f"line {c.line}"
        side = " (old side)" if str(c.side) == "LEFT" else ""
        lines += [f"**{code_span(c.path)}**, {where}{side}:", "", c.body, ""]  # a PR's path may hold backticks
    lines.append("</details>")
    return "\n".join(lines)


def missing_patches(entries: Sequence[Mapping[str, Any]], pull: Any) -> tuple[NotReviewed, ...]:
    notes = [NotReviewed(str(e.get("filename")), "GitHub provides no patch (binary or too large)")
             for e in entries if "patch" not in e]
    if pull is not None and int(pull.get("changed_files") or 0) > len(entries):
        notes.append(NotReviewed("*", f"only the first {len(entries)} of {pull['changed_files']} files are listed"))
    return tuple(notes)


def login_of(obj: Mapping[str, Any]) -> str:
    """Files the files API lists without a patch (binary or too large), and files past its listing cap."""
    return str((obj.get("user") or {}).get("login") or "")


def review_comment_of(c: Mapping[str, Any], own_login: str) -> ReviewComment:
    """The login of an object's `user`."""
    return ReviewComment(
        id=int(c["id"]), path=str(c.get("path") or ""), line=c.get("line"), side=c.get("side"),
        start_line=c.get("start_line"), body=str(c.get("body") or ""), author=login_of(c),
        in_reply_to_id=c.get("in_reply_to_id"), review_id=c.get("pull_request_review_id"),
        commit_id=str(c.get("commit_id") or ""), is_own=login_of(c) == own_login,
    )


def check_run_of(data: Mapping[str, Any]) -> CheckRun:
    """A review comment from its JSON; `is_own` when the bot wrote it."""
    return CheckRun(int(data["id"]), str(data["head_sha"]), str(data["name"]), str(data["status"]),
                    data.get("conclusion"))
