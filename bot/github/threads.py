"""Read a pull request's review threads in GraphQL: each thread's comments and who gave its comments a 👎.

`PullRequest.reviewThreads` pages `PullRequestReviewThread`s (`id`, `isResolved`, `comments`); each comment is
`Reactable`, so `reactions(content: THUMBS_DOWN, first:)` lists the users behind its thumbs-down reactions
(GitHub GraphQL reference: objects PullRequestReviewThread, PullRequestReviewComment, Reaction; enum
ReactionContent). One query answers what the REST API needs a call per comment for. A `Bot` author's login is
the App's slug without `[bot]`, so the App's own comments are recognised by `__typename` Bot and that slug.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

#: Threads read per review (pages of 100); past that, older threads' 👎 are read at a later review.
MAX_THREADS: Final = 500
THREADS_QUERY: Final = """
query($owner: String!, $repo: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id isResolved
          comments(first: 50) {
            nodes {
              databaseId body author { __typename login }
              reactions(content: THUMBS_DOWN, first: 20) { nodes { user { login } } }
            }
          }
        }
      }
    }
  }
}
"""


class GraphQLReader(Protocol):
    """What this module needs of `RepoClient`: its repository and a read-only GraphQL call."""

    owner: str
    repo: str

    async def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run a GraphQL query; return its `data`."""
        ...


@dataclass(frozen=True, slots=True)
class ThreadComment:
    """One comment of a thread: its REST id, author, whether the App wrote it, its body, and who gave it 👎."""

    id: int
    author: str
    is_own: bool
    body: str
    thumbs_down: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Thread:
    """A review thread (node id) and its comments in order; the first is the thread's root."""

    id: str
    is_resolved: bool
    comments: tuple[ThreadComment, ...]

    @property
    def root(self) -> ThreadComment | None:
        """The comment that started the thread."""
        return self.comments[0] if self.comments else None


def _comment(node: dict[str, Any], own_slug: str) -> ThreadComment:
    author = node.get("author") or {}
    login = str(author.get("login") or "")
    own = author.get("__typename") == "Bot" and login.lower() == own_slug.lower()
    users = ((r.get("user") or {}).get("login") for r in ((node.get("reactions") or {}).get("nodes") or []))
    return ThreadComment(int(node["databaseId"]), login, own, str(node.get("body") or ""),
                         tuple(str(u) for u in users if u))


async def read_threads(gh: GraphQLReader, number: int, own_slug: str,
                       limit: int = MAX_THREADS) -> tuple[Thread, ...]:
    """The pull request's review threads, with their comments and thumbs-down users (at most `limit`)."""
    threads: list[Thread] = []
    after: str | None = None
    while len(threads) < limit:
        variables: dict[str, Any] = {"owner": gh.owner, "repo": gh.repo, "number": number, "after": after}
        data = await gh.query(THREADS_QUERY, variables)
        pull = (data.get("repository") or {}).get("pullRequest") or {}
        page = pull.get("reviewThreads") or {}
        for node in page.get("nodes") or []:
            comments: Sequence[dict[str, Any]] = (node.get("comments") or {}).get("nodes") or []
            threads.append(Thread(str(node["id"]), bool(node.get("isResolved")),
                                  tuple(_comment(c, own_slug) for c in comments)))
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            break
        after = str(info["endCursor"])
    return tuple(threads[:limit])
