"""Path globs of the configuration (`paths`, `instructions`): gitignore-like, the same rules as the diff filter."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from bot.config_schema import RepoConfig


def path_matches(path: str, glob: str) -> bool:
    """`*`, `?`, `[abc]` within a segment, `**` across segments; no `/`: any depth; trailing `/`: everything under."""
    return _glob_regex(glob).fullmatch(path) is not None


@lru_cache(maxsize=512)
def _glob_regex(glob: str) -> re.Pattern[str]:
    pattern = glob.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    under = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    if "/" not in pattern:
        pattern = "**/" + pattern
    pattern = pattern.lstrip("/") + ("/**" if under else "")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1 and "/" not in pattern[i:end]:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out, i = out + "[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def instructions_for(config: RepoConfig, paths: Iterable[str]) -> str:
    """The texts of the `instructions` whose glob matches any of `paths`, in file order."""
    paths = list(paths)
    texts = [item.text for item in config.instructions if any(path_matches(p, item.path) for p in paths)]
    return "\n\n".join(texts)
