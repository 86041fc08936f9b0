"""Read the review's context at the head commit in one GraphQL query: file texts and directory listings.

`repository.object(expression: "<sha>:<path>")` returns a `Blob` (`text`, null when binary; `isTruncated` for
very large files) or a `Tree` (`entries { name type }`), or null when nothing is there (GitHub GraphQL reference,
objects `Blob`, `Tree`, `Repository.object`). Every path goes in as a variable, never into the query text, so a
file name from a pull request cannot change the query. At most `MAX_CALLS` queries per review; files past that
are simply shown without context.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, Protocol

from bot.context import RepoView

log = logging.getLogger(__name__)

BLOBS_PER_QUERY: Final = 40
DIRS_PER_QUERY: Final = 80
MAX_CALLS: Final = 2
_BLOB_FIELDS = "... on Blob { text isBinary isTruncated }"
_TREE_FIELDS = "... on Tree { entries { name type } }"


class GraphQLReader(Protocol):
    """What this module needs of `RepoClient`: its repository and a read-only GraphQL call."""

    owner: str
    repo: str

    async def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run a GraphQL query; return its `data`."""
        ...


def build_query(blobs: int, dirs: int) -> str:
    """The query text for `blobs` file reads (`b<i>`) and `dirs` directory listings (`d<i>`), paths as variables."""
    names = [f"$b{i}: String!" for i in range(blobs)] + [f"$d{i}: String!" for i in range(dirs)]
    fields = [f"b{i}: object(expression: $b{i}) {{ {_BLOB_FIELDS} }}" for i in range(blobs)]
    fields += [f"d{i}: object(expression: $d{i}) {{ {_TREE_FIELDS} }}" for i in range(dirs)]
    header = ", ".join(["$owner: String!", "$repo: String!", *names])
    body = "\n    ".join(fields)
    return f"query({header}) {{\n  repository(owner: $owner, name: $repo) {{\n    {body}\n  }}\n}}\n"


def parse_answer(data: dict[str, Any], blobs: Sequence[str], dirs: Sequence[str]) -> RepoView:
    """The texts and listings of one answer (binary, truncated and missing objects left out)."""
    repo = data.get("repository") or {}
    texts: dict[str, str] = {}
    listings: dict[str, tuple[str, ...]] = {}
    for i, path in enumerate(blobs):
        node = repo.get(f"b{i}") or {}
        text = node.get("text")
        if isinstance(text, str) and not node.get("isBinary") and not node.get("isTruncated"):
            texts[path] = text
    for i, folder in enumerate(dirs):
        node = repo.get(f"d{i}") or {}
        entries = node.get("entries")
        if isinstance(entries, list):
            listings[folder] = tuple(
                str(e["name"]) for e in entries if isinstance(e, dict) and e.get("type") == "blob" and e.get("name")
            )
    return RepoView(texts, listings)


async def read_context(gh: GraphQLReader, sha: str, paths: Sequence[str], dirs: Sequence[str]) -> RepoView:
    """The texts of `paths` and the listings of `dirs` at commit `sha`, in at most MAX_CALLS queries."""
    paths, dirs = list(dict.fromkeys(paths)), list(dict.fromkeys(dirs))[:DIRS_PER_QUERY]
    texts: dict[str, str] = {}
    listings: dict[str, tuple[str, ...]] = {}
    calls = 0
    while (paths or dirs) and calls < MAX_CALLS:
        chunk, paths = paths[:BLOBS_PER_QUERY], paths[BLOBS_PER_QUERY:]
        variables: dict[str, Any] = {"owner": gh.owner, "repo": gh.repo}
        variables |= {f"b{i}": f"{sha}:{p}" for i, p in enumerate(chunk)}
        variables |= {f"d{i}": f"{sha}:{d}" for i, d in enumerate(dirs)}
        data = await gh.query(build_query(len(chunk), len(dirs)), variables)
        view = parse_answer(data, chunk, dirs)
        texts |= view.texts
        listings |= view.listings
        dirs, calls = [], calls + 1
    if paths:
        log.info("context: %d files read without their head text (over %d queries)", len(paths), MAX_CALLS)
    return RepoView(texts, listings)
