"""What the bot writes besides its review: conversation comments, reactions, replies in review threads,
resolved threads, check runs."""

from __future__ import annotations

from typing import Any

from bot.errors import Unprocessable
from bot.github.payloads import CheckRun, IssueComment, ReviewComment, check_run_of, login_of, review_comment_of
from bot.github.pulls import PullReads


class Conversation(PullReads):
    """Comments, reactions, threads and check runs on one repository."""

    async def create_issue_comment(self, number: int, body: str) -> IssueComment:
        """Add a conversation comment to the pull request."""
        data = await self._write("POST", f"issues/{number}/comments", "create comment", {"body": body})
        return IssueComment(int(data["id"]), str(data["body"]), login_of(data), True)

    async def add_reaction(self, comment_id: int, content: str, *, review_comment: bool = False) -> int:
        """React to an issue comment (or a review comment); the reaction id."""
        kind = "pulls" if review_comment else "issues"
        data = await self._write("POST", f"{kind}/comments/{comment_id}/reactions", "react", {"content": content})
        return int(data["id"])

    async def reply_to_review_comment(self, number: int, comment_id: int, body: str) -> ReviewComment:
        """Reply in the thread of review comment `comment_id` (a reply's id is mapped to its thread's root,
        since GitHub documents that replies to replies are not supported)."""
        try:
            data = await self._write("POST", f"pulls/{number}/comments/{comment_id}/replies", "reply", {"body": body})
        except Unprocessable:
            root = (await self._get(f"pulls/comments/{comment_id}", "get review comment")).get("in_reply_to_id")
            if not root:
                raise
            data = await self._write("POST", f"pulls/{number}/comments/{root}/replies", "reply", {"body": body})
        return review_comment_of(data, login_of(data))

    async def create_check_run(
        self, head_sha: str, name: str, *, status: str = "in_progress", conclusion: str | None = None,
        title: str = "", summary: str = "", details_url: str | None = None,
    ) -> CheckRun:
        """Create a check run on `head_sha` (works for fork PRs: keyed by sha, not by pull request)."""
        payload: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status}
        if conclusion is not None:
            payload.update(status="completed", conclusion=conclusion)
        if title or summary:
            payload["output"] = {"title": title or name, "summary": summary or title}
        if details_url:
            payload["details_url"] = details_url
        return check_run_of(await self._write("POST", "check-runs", "create check run", payload))

    async def update_check_run(
        self, run_id: int, *, status: str | None = None, conclusion: str | None = None, title: str = "",
        summary: str = "",
    ) -> CheckRun:
        """Update a check run (a conclusion completes it)."""
        payload: dict[str, Any] = {}
        if status is not None:
            payload["status"] = status
        if conclusion is not None:
            payload.update(status="completed", conclusion=conclusion)
        if title or summary:
            payload["output"] = {"title": title or "Review", "summary": summary or title}
        return check_run_of(await self._write("PATCH", f"check-runs/{run_id}", "update check run", payload))

    async def resolve_review_thread(self, number: int, comment_id: int) -> bool:
        """Resolve the thread started by `comment_id` when the bot may; True when it did."""
        for thread in await self.review_threads(number):
            if thread.comment_ids[:1] == (comment_id,):
                if thread.is_resolved or not thread.viewer_can_resolve:
                    return False
                await self._space()
                await self._graphql(RESOLVE_MUTATION, {"threadId": thread.id})
                return True
        return False


RESOLVE_MUTATION = """
mutation($threadId: ID!) { resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } } }
"""
