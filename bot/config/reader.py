"""The one configuration reader of the App and the terminal: the layers' files read through repository clients.

This repository's file comes through the review's own client; another repository's (the owner's `.github`)
through a client opened for it (an installation client in the App, a token client in the terminal). A
repository the client cannot read (not installed there, no access) is no layer. Other repositories' answers,
misses included, are cached for `ORG_CONFIG_TTL` seconds: the organisation layer changes rarely, and reading it
costs a token request and a file request on every review otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.errors import Forbidden, NotFound, Unprocessable

ORG_CONFIG_TTL = 600.0
# (scope, owner, repo, path, ref) -> (expiry on the monotonic clock, the file's text or None when absent); the
# scope keeps apart what different credentials may read (the App's installation id; 0 for a token).
ConfigCache = dict[tuple[int, str, str, str, str | None], tuple[float, str | None]]


class RepoFiles(Protocol):
    """What reading a configuration file needs from a repository client (`bot.github.repo.RepoClient`)."""

    @property
    def owner(self) -> str:
        """The repository's owner."""
        ...

    @property
    def repo(self) -> str:
        """The repository's name."""
        ...

    async def get_file(self, path: str, ref: str | None = None) -> str | None:
        """The file's text at `ref` (None when absent)."""
        ...


# Opens a client on another repository (owner, repo) for the time of one read.
OpenRepo = Callable[[str, str], AbstractAsyncContextManager[RepoFiles]]


class ConfigReader:
    """`bot.config.load.ConfigReader` over repository clients (see the module docstring)."""

    def __init__(self, repo: RepoFiles, open_repo: OpenRepo, cache: ConfigCache | None = None, scope: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._repo, self._open, self._scope, self._clock = repo, open_repo, scope, clock
        self._cache: ConfigCache = {} if cache is None else cache

    async def get_file(self, owner: str, repo: str, path: str, ref: str | None) -> str | None:
        """The file's text at `ref` (None: the default branch), None when absent or unreadable."""
        if (owner, repo) == (self._repo.owner, self._repo.repo):
            return await self._repo.get_file(path, ref)
        key = (self._scope, owner, repo, path, ref)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        try:
            async with self._open(owner, repo) as other:
                text = await other.get_file(path, ref)
        except (NotFound, Forbidden, Unprocessable):
            text = None  # not installed on (or no access to) that repository: no such layer
        self._cache[key] = (self._clock() + ORG_CONFIG_TTL, text)
        return text
