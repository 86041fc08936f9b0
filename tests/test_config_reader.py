"""The one configuration reader of the App and the terminal: own repository direct, others opened and cached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.config.reader import ORG_CONFIG_TTL, ConfigCache, ConfigReader, RepoFiles
from bot.errors import Forbidden, NotFound, RateLimited


class Files:
    """A repository client holding a few files; `error` is raised by every read instead."""

    def __init__(self, owner: str, repo: str, files: dict[str, str], error: Exception | None = None) -> None:
        self.owner, self.repo, self.files, self.error = owner, repo, files, error
        self.reads = 0

    async def get_file(self, path: str, ref: str | None = None) -> str | None:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.files.get(path)


class Opener:
    """Opens `Files` clients by (owner, repo) and records which were opened and closed."""

    def __init__(self, repos: dict[tuple[str, str], Files]) -> None:
        self.repos, self.opened, self.closed = repos, [], 0  # type: ignore[var-annotated]

    @asynccontextmanager
    async def __call__(self, owner: str, repo: str) -> AsyncIterator[RepoFiles]:
        self.opened.append((owner, repo))
        try:
            yield self.repos[(owner, repo)]
        finally:
            self.closed += 1


async def test_own_repository_is_read_directly_and_others_are_cached_until_the_ttl() -> None:
    own = Files("octo", "hello", {"cfg.yml": "own"})
    org = Files("octo", ".github", {"cfg.yml": "org"})
    opener = Opener({("octo", ".github"): org})
    now = [100.0]
    reader = ConfigReader(own, opener, clock=lambda: now[0])

    assert await reader.get_file("octo", "hello", "cfg.yml", "main") == "own"
    assert opener.opened == [] and own.reads == 1
    assert await reader.get_file("octo", ".github", "cfg.yml", None) == "org"
    assert await reader.get_file("octo", ".github", "cfg.yml", None) == "org"
    assert org.reads == 1 and opener.closed == 1
    assert await reader.get_file("octo", ".github", "missing.yml", None) is None  # a miss is cached too
    assert await reader.get_file("octo", ".github", "missing.yml", None) is None
    assert org.reads == 2
    now[0] += ORG_CONFIG_TTL + 1
    assert await reader.get_file("octo", ".github", "cfg.yml", None) == "org"
    assert org.reads == 3 and opener.closed == 3


@pytest.mark.parametrize("error", [NotFound("no"), Forbidden("no")])
async def test_an_unreadable_repository_is_no_layer(error: Exception) -> None:
    opener = Opener({("octo", ".github"): Files("octo", ".github", {}, error)})
    reader = ConfigReader(Files("octo", "hello", {}), opener)
    assert await reader.get_file("octo", ".github", "cfg.yml", None) is None
    assert opener.closed == 1


async def test_a_rate_limit_passes_and_nothing_is_cached() -> None:
    org = Files("octo", ".github", {}, RateLimited("later"))
    cache: ConfigCache = {}
    reader = ConfigReader(Files("octo", "hello", {}), Opener({("octo", ".github"): org}), cache)
    with pytest.raises(RateLimited):
        await reader.get_file("octo", ".github", "cfg.yml", None)
    assert cache == {}


async def test_the_cache_keeps_installations_apart() -> None:
    cache: ConfigCache = {}
    first = Opener({("octo", ".github"): Files("octo", ".github", {"cfg.yml": "one"})})
    second = Opener({("octo", ".github"): Files("octo", ".github", {}, Forbidden("not installed"))})
    assert await ConfigReader(Files("octo", "a", {}), first, cache, scope=1).get_file(
        "octo", ".github", "cfg.yml", None) == "one"
    # Another installation must not be served what only the first one could read.
    assert await ConfigReader(Files("octo", "b", {}), second, cache, scope=2).get_file(
        "octo", ".github", "cfg.yml", None) is None
