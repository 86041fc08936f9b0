"""Real `git diff` output for two in-memory trees, built in a throw-away repository (test helper).

GitHub's `application/vnd.github.diff` is plain `git diff -M base head` output (default prefixes,
default `core.quotePath=true`, no colour), so that is what `git_diff` returns.

Trees are written with one `git fast-import` run (no working tree: no checkout, no autocrlf, no
file-system limits on names), then diffed, so `git_diff` costs three git processes (init, fast-import,
diff). `git_repo` yields a `GitRepo` for more queries: `.diff_bytes()`, `.numstat()` (added/removed per
path, `None` for binary), `.shas()` (base and head commit shas), `.git(*args)`.

Git runs with an empty configuration (no system/global config, `HOME` pointed at the temporary
directory) and a fixed identity via `GIT_AUTHOR_*`/`GIT_COMMITTER_*`; nothing global changes.

Decoding: git's output is bytes. `git_diff` decodes it as UTF-8 with `errors="replace"` by default,
which is what an HTTP client decoding GitHub's diff body as UTF-8 yields; pass `errors="surrogateescape"`
to keep invalid bytes round-trippable, or use `git_diff_bytes` for the raw bytes.

A tree maps a path to file content (`bytes` or `str`; `str` is encoded as UTF-8 verbatim, so `"\\r\\n"`
stays CRLF) or to an `Entry` for other modes: `Entry(content, "100755")` (executable),
`Entry("target", "120000")` (symlink), `Entry("<40-hex sha>", "160000")` (submodule / gitlink).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "GitRepo", "Tree", "git_diff", "git_diff_bytes", "git_repo"]

REGULAR = "100644"
EXECUTABLE = "100755"
SYMLINK = "120000"
GITLINK = "160000"


@dataclass(frozen=True, slots=True)
class Entry:
    """A tree entry with an explicit mode (regular, executable, symlink or gitlink)."""

    content: bytes | str
    mode: str = REGULAR


Tree = Mapping[str, "bytes | str | Entry"]


def _env(home: Path) -> dict[str, str]:
    """An environment that isolates git from the developer's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
        GIT_COMMITTER_DATE="1700000000 +0000",
        LC_ALL="C",
    )
    return env


def _as_bytes(value: bytes | str) -> bytes:
    """Content as bytes (`str` encoded as UTF-8, no newline translation)."""
    return value.encode("utf-8") if isinstance(value, str) else value


def _quote(path: str) -> bytes:
    """A path in fast-import's C-style quoting (always quoted, so spaces and leading quotes are safe)."""
    raw = path.encode("utf-8")
    out = bytearray(b'"')
    for byte in raw:
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte == 0x0A:
            out += b"\\n"
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _commit_stream(ref: str, tree: Tree, parent: str | None) -> bytes:
    """The fast-import commands creating one commit whose tree is exactly `tree`."""
    parts = [f"commit refs/heads/{ref}\ncommitter T <t@example.com> 1700000000 +0000\ndata 1\n{ref[0]}\n".encode()]
    if parent:
        parts.append(f"from refs/heads/{parent}\n".encode())
    parts.append(b"deleteall\n")
    for path, value in sorted(tree.items()):
        entry = value if isinstance(value, Entry) else Entry(value)
        if entry.mode == GITLINK:
            sha = _as_bytes(entry.content).decode().strip()
            parts.append(b"M 160000 " + sha.encode() + b" " + _quote(path) + b"\n")
            continue
        data = _as_bytes(entry.content)
        parts.append(b"M " + entry.mode.encode() + b" inline " + _quote(path) + b"\n")
        parts.append(b"data " + str(len(data)).encode() + b"\n" + data + b"\n")
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class GitRepo:
    """A temporary repository holding a `base` and a `head` commit (`base`/`head` are ref names)."""

    path: Path
    base: str
    head: str

    def shas(self) -> tuple[str, str]:
        """The base and head commit shas."""
        base, head = self.git("rev-parse", self.base, self.head).decode().split()
        return base, head

    def git(self, *args: str) -> bytes:
        """Run git in this repository and return its raw stdout (raises on failure)."""
        return subprocess.run(
            ["git", *args], cwd=self.path, env=_env(self.path), check=True, capture_output=True
        ).stdout

    def diff_bytes(self, *, rename: bool = True, extra_args: Sequence[str] = ()) -> bytes:
        """`git diff [-M] base head` as raw bytes."""
        flags = ["-M"] if rename else ["--no-renames"]
        return self.git("-c", "core.quotePath=true", "diff", "--no-color", "--no-ext-diff", *flags,
                        *extra_args, self.base, self.head)

    def numstat(self, *, rename: bool = True) -> list[tuple[int | None, int | None, str]]:
        """`git diff --numstat -z` as (added, removed, new path); binary files give (None, None, path)."""
        flags = ["-M"] if rename else ["--no-renames"]
        out = self.git("diff", "--numstat", "-z", *flags, self.base, self.head).decode("utf-8", "surrogateescape")
        fields = out.split("\0")
        rows: list[tuple[int | None, int | None, str]] = []
        i = 0
        while i < len(fields) - 1:
            added, removed, path = fields[i].split("\t", 2)
            i += 1
            if path == "":  # rename/copy: old and new path follow as separate fields
                path = fields[i + 1]
                i += 2
            rows.append((None if added == "-" else int(added), None if removed == "-" else int(removed), path))
        return rows


@contextmanager
def git_repo(before: Tree, after: Tree) -> Iterator[GitRepo]:
    """A temporary repository with `before` committed as `base` and `after` as `head` (deleted on exit)."""
    with tempfile.TemporaryDirectory(prefix="gitdiff-") as tmp:
        path = Path(tmp)
        env = _env(path)
        subprocess.run(["git", "init", "-q", "--bare", "repo.git"], cwd=path, env=env, check=True)
        repo_dir = path / "repo.git"
        stream = _commit_stream("base", before, None) + _commit_stream("head", after, "base")
        subprocess.run(["git", "fast-import", "--quiet"], cwd=repo_dir, env=env, input=stream, check=True,
                       capture_output=True)
        yield GitRepo(repo_dir, "refs/heads/base", "refs/heads/head")


def git_diff_bytes(before: Tree, after: Tree, *, rename: bool = True, extra_args: Sequence[str] = ()) -> bytes:
    """Raw bytes of `git diff -M base head` between two trees."""
    with git_repo(before, after) as repo:
        return repo.diff_bytes(rename=rename, extra_args=extra_args)


def git_diff(
    before: Tree, after: Tree, *, rename: bool = True, extra_args: Sequence[str] = (), errors: str = "replace"
) -> str:
    """`git diff -M base head` between two trees, decoded as UTF-8 (see the module docstring)."""
    return git_diff_bytes(before, after, rename=rename, extra_args=extra_args).decode("utf-8", errors)
