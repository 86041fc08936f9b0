"""A finding's thread after it is posted: fixed -> acknowledged and resolved; dismissed (by a writer's reply or 👎)
-> confirmed once, resolved, never raised again.

The store is settled first (a compare-and-set on the finding's state) and the reply carries a hidden marker, so
a retried job neither replies twice nor loses the decision. Resolving is GraphQL (`resolveReviewThread`); when it
fails (the App may not resolve, GitHub errors) the reply stands and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.commands import is_writer, lookup_permission
from bot.contract import EarlierFinding
from bot.domain import FindingState, is_bot
from bot.errors import GitHubError, RetryLater
from bot.github.payloads import ReviewComment
from bot.github.threads import read_threads
from bot.render import markers_in
from bot.store.base import Store
from bot.store.types import Dismissal, FindingRecord

log = logging.getLogger(__name__)

FIXED_MARKER = "<!-- senior-review:fixed:{} -->"
DISMISSED_MARKER = "<!-- senior-review:dismissed:{} -->"
#: States a dismissal may replace (a dismissed finding is confirmed once, never again).
DISMISSABLE = [s.value for s in FindingState if s is not FindingState.DISMISSED]


class ThreadClient(Protocol):
    """What this module needs of `RepoClient`."""

    owner: str
    repo: str

    async def list_review_comments(self, number: int) -> tuple[ReviewComment, ...]:
        """Every review comment of the pull request."""
        ...

    async def reply_to_review_comment(self, number: int, comment_id: int, body: str) -> ReviewComment:
        """Reply in a review comment's thread."""
        ...

    async def resolve_review_thread(self, number: int, comment_id: int) -> bool:
        """Resolve the thread `comment_id` started."""
        ...

    async def collaborator_permission(self, user: str) -> str:
        """The user's permission on the repository."""
        ...

    async def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A read-only GraphQL query."""
        ...


@dataclass(frozen=True, slots=True)
class OwnThreads:
    """The App's finding comments by fingerprint (root comment ids) and the hidden markers of its replies."""

    roots: Mapping[str, int]
    said: frozenset[str]


async def own_threads(gh: ThreadClient, number: int) -> OwnThreads:
    """Read the pull request's review comments once: the App's roots by the fingerprints they carry, and what the
    App already replied (markers in other people's comments are not trusted)."""
    roots: dict[str, int] = {}
    said: set[str] = set()
    for comment in await gh.list_review_comments(number):
        if not comment.is_own:
            continue
        if comment.in_reply_to_id is None:
            for fp in markers_in(comment.body):
                roots.setdefault(fp, comment.id)
        else:
            said.update(line.strip() for line in comment.body.splitlines() if line.startswith("<!-- senior-review:"))
    return OwnThreads(roots, frozenset(said))


async def resolve(gh: ThreadClient, number: int, root_id: int) -> bool:
    """Resolve the thread of `root_id`; a failure is logged and answered False (the reply before it stands)."""
    try:
        return await gh.resolve_review_thread(number, root_id)
    except (GitHubError, RetryLater) as exc:  # best effort: GitHub unavailable or rate limited included
        log.warning("could not resolve the thread of comment %s: %s", root_id, exc)
        return False


async def acknowledge_fixed(gh: ThreadClient, number: int, fixed: Sequence[EarlierFinding], head_sha: str) -> int:
    """For each finding the re-check found fixed: one reply "Fixed in `<sha>`." in its thread, then resolve it.
    Returns the replies posted."""
    if not fixed:
        return 0
    threads = await own_threads(gh, number)
    posted = 0
    for item in fixed:
        root = threads.roots.get(item.fingerprint)
        if root is None:  # its comment was deleted, or it went into a review body: nothing to reply to
            log.info("fixed finding %s has no thread", item.fingerprint)
            continue
        marker = FIXED_MARKER.format(item.fingerprint)
        if marker not in threads.said:
            await gh.reply_to_review_comment(number, root, f"Fixed in `{head_sha[:7]}`.\n\n{marker}")
            posted += 1
        await resolve(gh, number, root)
    return posted


def dismissed_text(by: str, via_reaction: bool, remembered: bool) -> str:
    """The one confirmation of a dismissal (the login in a code span: no ping)."""
    who = f"after a 👎 from `{by}`" if via_reaction else f"by `{by}`"
    text = f"Dismissed {who}: I won't raise this again on this pull request."
    if remembered:
        text += " The reason is noted, and I won't post it inline in this repository's later pull requests either."
    return text


async def dismiss(
    gh: ThreadClient, store: Store, number: int, fingerprint: str, root_id: int, *, by: str, reason: str = "",
    via_reaction: bool = False, remember: bool = True, path: str = "",
) -> bool:
    """Dismiss one finding: settle it in the store (only once), remember a reason for the repository, confirm by
    one reply and resolve the thread. False when it was dismissed before (nothing posted)."""
    repo = f"{gh.owner}/{gh.repo}"
    changed = await store.set_finding_state(repo, number, fingerprint, FindingState.DISMISSED.value,
                                            only_from=DISMISSABLE)
    if not changed:
        if any(r.fingerprint == fingerprint for r in await store.list_findings(repo, number)):
            return False  # dismissed already: confirmed once, then silent
        # A finding the store no longer holds (pruned, recovered without it): remember the decision anyway.
        await store.upsert_findings([FindingRecord(repo, number, fingerprint, path, None,
                                                   state=FindingState.DISMISSED.value)])
    remembered = bool(reason.strip()) and remember
    if remembered:
        await store.record_dismissal(Dismissal(repo, fingerprint, number, reason.strip(), by))
    marker = DISMISSED_MARKER.format(fingerprint)
    await gh.reply_to_review_comment(number, root_id, f"{dismissed_text(by, via_reaction, remembered)}\n\n{marker}")
    await resolve(gh, number, root_id)
    return True


async def dismiss_by_reactions(gh: ThreadClient, store: Store, number: int, own_slug: str,
                               open_fingerprints: Iterable[str]) -> int:
    """Read the App's threads once: a finding still open whose comment got a 👎 from someone with write access is
    dismissed (others' 👎 are ignored). Returns how many were dismissed."""
    wanted = set(open_fingerprints)
    if not wanted:
        return 0
    permissions: dict[str, str | None] = {}
    done = 0
    for thread in await read_threads(gh, number, own_slug):
        root = thread.root
        if root is None or not root.is_own or not root.thumbs_down:
            continue
        fingerprints = sorted(markers_in(root.body) & wanted)
        if not fingerprints:
            continue
        writer = None
        for user in root.thumbs_down:
            if is_bot(user, "", own_slug):
                continue
            if user not in permissions:
                permissions[user] = await lookup_permission(gh, user)
            if is_writer(permissions[user]):
                writer = user
                break
        if writer is None:
            log.info("thumbs-down on comment %s by people without write access: ignored", root.id)
            continue
        for fp in fingerprints:
            done += await dismiss(gh, store, number, fp, root.id, by=writer, via_reaction=True)
            wanted.discard(fp)
    return done
