"""Path globs of the configuration (`paths`, `instructions`): gitignore-like, the same rules as the diff filter."""

from __future__ import annotations

from collections.abc import Iterable

from bot.config.schema import RepoConfig
from bot.diff_render import path_matches

__all__ = ["instructions_for", "path_matches"]


def instructions_for(config: RepoConfig, paths: Iterable[str]) -> str:
    """The texts of the `instructions` whose glob matches any of `paths`, in file order."""
    paths = list(paths)
    texts = [item.text for item in config.instructions if any(path_matches(p, item.path) for p in paths)]
    return "\n\n".join(texts)
