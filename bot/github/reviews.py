"""Posting a review: exactly one `POST .../reviews` with `event: COMMENT`, every finding kept.

If GitHub answers 422, the offending comments are found without creating extra visible reviews: first with the
caller's `is_placeable`, then by bisecting with PENDING reviews (created without `event`, then deleted; pending
reviews are visible to nobody but their author). Rejected comments become file-level notes in the body; exactly
one review is submitted and no finding is dropped. A 422 about the commit means the head moved (`StaleHead`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.domain import InlineComment, ReviewToPost
from bot.errors import GitHubUnavailable, StaleHead, Unprocessable
from bot.github.payloads import PostedReview, comment_json, review_body
from bot.github.pulls import PullReads
from bot.github.retry import RetryPolicy

DEFAULT_MAX_INLINE = 25


class ReviewPosting(PullReads):
    """One review per run on one repository's pull requests."""

    async def post_review(
        self,
        number: int,
        review: ReviewToPost,
        is_placeable: Callable[[InlineComment], bool] | None = None,
        max_inline: int = DEFAULT_MAX_INLINE,
    ) -> PostedReview:
        """Submit exactly one COMMENT review; comments GitHub rejects (or past `max_inline`) go to the body."""
        inline, overflow = list(review.comments[:max_inline]), tuple(review.comments[max_inline:])
        moved: list[InlineComment] = []
        try:
            return await self._submit(number, review, inline, moved, overflow)
        except Unprocessable as exc:
            _raise_if_stale(exc, review.commit_id)
        if is_placeable is not None:
            moved = [c for c in inline if not is_placeable(c)]
            inline = [c for c in inline if is_placeable(c)]
            if moved:
                try:
                    return await self._submit(number, review, inline, moved, overflow)
                except Unprocessable as exc:
                    _raise_if_stale(exc, review.commit_id)
        rejected = await self._find_rejected(number, review.commit_id, inline)
        inline = [c for c in inline if c not in rejected]
        moved += rejected
        try:
            return await self._submit(number, review, inline, moved, overflow)
        except Unprocessable:
            return await self._submit(number, review, [], moved + inline, overflow)

    async def _submit(
        self, number: int, review: ReviewToPost, inline: Sequence[InlineComment], moved: Sequence[InlineComment],
        overflow: Sequence[InlineComment],
    ) -> PostedReview:
        body = review_body(review.body, moved, overflow)
        payload = {"commit_id": review.commit_id, "event": "COMMENT", "body": body,
                   "comments": [comment_json(c) for c in inline]}
        data = await self._create_review(number, payload, body)
        return PostedReview(int(data["id"]), str(data.get("html_url") or ""), tuple(inline), tuple(moved),
                            tuple(overflow))

    async def _create_review(self, number: int, payload: dict[str, Any], body: str) -> dict[str, Any]:
        """POST the review; after a transient failure, look for it before posting again (no duplicates)."""
        policy = self.app.policy
        once = RetryPolicy(0, policy.max_wait, policy.backoff_base, policy.sleep, policy.clock)
        for attempt in range(policy.retries + 1):
            try:
                return dict(await self._write("POST", f"pulls/{number}/reviews", "post review", payload, once))
            except GitHubUnavailable:
                existing = [r for r in await self.list_reviews(number)
                            if r.is_own and r.commit_id == payload["commit_id"] and r.body == body
                            and r.state != "PENDING"]
                if existing:
                    return {"id": existing[-1].id, "html_url": ""}
                if attempt == policy.retries:
                    raise
                await policy.sleep(policy.backoff_base * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_rejected(self, number: int, commit_id: str, comments: list[InlineComment]) -> list[InlineComment]:
        """Bisect `comments` (known to fail together) with pending reviews that are deleted right away."""
        for stale in [r for r in await self.list_reviews(number) if r.is_own and r.state == "PENDING"]:
            await self._write("DELETE", f"pulls/{number}/reviews/{stale.id}", "delete pending review")
        rejected: list[InlineComment] = []

        async def accepted(group: Sequence[InlineComment]) -> bool:
            payload = {"commit_id": commit_id, "comments": [comment_json(c) for c in group]}
            try:
                data = await self._write("POST", f"pulls/{number}/reviews", "probe comments", payload)
            except Unprocessable:
                return False
            await self._write("DELETE", f"pulls/{number}/reviews/{data['id']}", "delete pending review")
            return True

        async def walk(group: Sequence[InlineComment], known_bad: bool) -> None:
            if not group or (not known_bad and await accepted(group)):
                return
            if len(group) == 1:
                rejected.append(group[0])
                return
            half = len(group) // 2
            await walk(group[:half], False)
            await walk(group[half:], False)

        await walk(comments, True)
        return rejected


def _raise_if_stale(exc: Unprocessable, commit_id: str) -> None:
    """A 422 about the commit means the head moved: the newer job reviews the new head."""
    if any("commit" in str(e).lower() for e in exc.errors) or "commit" in str(exc).lower():
        raise StaleHead(f"GitHub rejected commit {commit_id[:12]}: {exc.errors or exc}") from exc
