"""What the bot reads of a pull request: the pull itself, its diff, comparisons, files, reviews, comments,
threads and who may ask for what (collaborator permission)."""

from __future__ import annotations

import base64
from urllib.parse import quote

from bot.domain import NotReviewed, PullRequest
from bot.errors import NotFound, TooLarge
from bot.github.payloads import (
    Comparison,
    IssueComment,
    RawDiff,
    Review,
    ReviewComment,
    ReviewThread,
    login_of,
    missing_patches,
    review_comment_of,
)
from bot.github.session import RepoSession
from bot.github.transport import DIFF_MEDIA_TYPE

MAX_LISTED_FILES = 3_000
MAX_COMPARE_FILES = 300


class PullReads(RepoSession):
    """Reads of one repository's pull requests."""

    async def get_pull(self, number: int) -> PullRequest:
        """The pull request, re-read from GitHub."""
        data = await self._get(f"pulls/{number}", "get pull")
        user = data.get("user") or {}
        return PullRequest(
            owner=self.owner, repo=self.repo, number=int(data["number"]), title=str(data.get("title") or ""),
            body=str(data.get("body") or ""), author=str(user.get("login") or ""),
            author_is_bot=user.get("type") == "Bot", head_sha=str(data["head"]["sha"]),
            head_ref=str(data["head"]["ref"]), base_sha=str(data["base"]["sha"]), base_ref=str(data["base"]["ref"]),
            draft=bool(data.get("draft")), state=str(data.get("state") or "open"),
            author_association=str(data.get("author_association") or ""),
            default_branch=str(((data["base"].get("repo") or {}).get("default_branch")) or ""),
        )

    async def get_diff(self, number: int) -> RawDiff:
        """The unified diff; on 406 too_large the files API (100 per page, at most 3,000 files)."""
        try:
            text = await self._get(f"pulls/{number}", "get diff", accept=DIFF_MEDIA_TYPE)
            return RawDiff(text=str(text))
        except TooLarge:
            entries = await self._paginate(f"pulls/{number}/files", "list files", MAX_LISTED_FILES)
        pull = await self._get(f"pulls/{number}", "get pull") if len(entries) >= MAX_LISTED_FILES else None
        return RawDiff(None, tuple(entries), missing_patches(entries, pull))

    async def compare(self, base: str, head: str) -> Comparison:
        """`base...head`: status and counts (JSON), and for `ahead` the changes: the JSON's own per-file patches
        when it lists every file with its patch (one request), else the diff text (diff media type)."""
        basehead = f"compare/{quote(base)}...{quote(head)}"
        data = await self._get(basehead, "compare")
        status, ahead, behind = str(data["status"]), int(data["ahead_by"]), int(data["behind_by"])
        if status != "ahead":
            return Comparison(status, ahead, behind, None)
        files = list(data.get("files") or [])
        if files and len(files) < MAX_COMPARE_FILES and all("patch" in f for f in files):
            return Comparison(status, ahead, behind, None, tuple(files))
        try:
            text = await self._get(basehead, "compare diff", accept=DIFF_MEDIA_TYPE)
            return Comparison(status, ahead, behind, str(text))
        except TooLarge:
            notes = missing_patches(files, None)
            if len(files) >= MAX_COMPARE_FILES:
                notes += (NotReviewed("*", f"GitHub lists at most {MAX_COMPARE_FILES} files of a comparison"),)
            return Comparison(status, ahead, behind, None, tuple(files), notes)

    async def get_file(self, path: str, ref: str | None = None) -> str | None:
        """A file's text at `ref` (None: the default branch; configuration is read from the default branch, never
        the head), None when it does not exist."""
        try:
            data = await self._get(f"contents/{quote(path)}", "get file", params={"ref": ref} if ref else None)
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file" or data.get("encoding") != "base64":
            return None
        return base64.b64decode(str(data.get("content") or "")).decode("utf-8", errors="replace")

    async def list_reviews(self, number: int) -> tuple[Review, ...]:
        """Every review of the pull request (the bot's own flagged)."""
        own = await self._own_login()
        return tuple(
            Review(int(r["id"]), login_of(r), str(r.get("state") or ""), str(r.get("body") or ""),
                   str(r.get("commit_id") or ""), login_of(r) == own)
            for r in await self._paginate(f"pulls/{number}/reviews", "list reviews")
        )

    async def list_review_comments(self, number: int) -> tuple[ReviewComment, ...]:
        """Every review comment of the pull request (for dedupe; the bot's own flagged by its bot login)."""
        own = await self._own_login()
        return tuple(review_comment_of(c, own) for c in await self._paginate(f"pulls/{number}/comments", "comments"))

    async def list_issue_comments(self, number: int) -> tuple[IssueComment, ...]:
        """The pull request's conversation comments (the bot's own flagged by App id or bot login)."""
        me = await self.app.identity()
        return tuple(
            IssueComment(int(c["id"]), str(c.get("body") or ""), login_of(c),
                         (c.get("performed_via_github_app") or {}).get("id") == me.id or login_of(c) == me.bot_login)
            for c in await self._paginate(f"issues/{number}/comments", "issue comments")
        )

    async def collaborator_permission(self, user: str) -> str:
        """`admin`, `maintain`, `write`, `triage`, `read` or `none` (unknown users: `none`)."""
        try:
            data = await self._get(f"collaborators/{quote(user, safe='')}/permission", "permission")
        except NotFound:
            return "none"
        return str(data.get("permission") or "none")

    async def review_threads(self, number: int) -> tuple[ReviewThread, ...]:
        """The pull request's review threads (first 100), via GraphQL."""
        data = await self._graphql(THREADS_QUERY, {"owner": self.owner, "repo": self.repo, "number": number})
        pull = (data.get("repository") or {}).get("pullRequest") or {}
        return tuple(
            ReviewThread(str(n["id"]), bool(n["isResolved"]), bool(n["viewerCanResolve"]),
                         tuple(int(c["databaseId"]) for c in n["comments"]["nodes"]))
            for n in (pull.get("reviewThreads") or {}).get("nodes") or []
        )


THREADS_QUERY = """
query($owner: String!, $repo: String!, $number: Int!) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100) {
        nodes { id isResolved viewerCanResolve comments(first: 100) { nodes { databaseId } } }
      }
    }
  }
}
"""
