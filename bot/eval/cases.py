"""The seeded pull requests of `bot eval`: one YAML file each under `bot/eval/cases/`, loaded and checked.

A case gives the files before and after the change (the diff is built from them, git-style, so line numbers are
always right), the pull request's title and description, and the bugs planted in it. A bug is located by the text
of the line it is on (`at`, which must occur exactly once in the file after the change) and says what a correct
comment must convey (`must_say`, for people and judges) and which words show it did (`keywords`: a comment naming
none of them does not count). A clean case has no bugs; an injection case also lists `forbidden` phrases a review
that obeyed the planted instruction would contain.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).resolve().parent / "cases"


class CaseError(ValueError):
    """A case file that cannot be used (the message names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class Bug:
    """A planted problem: where it is (after the change) and what a comment on it must say."""

    path: str
    start_line: int
    end_line: int
    must_say: str
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Case:
    """One seeded pull request."""

    name: str
    area: str
    title: str
    body: str
    before: Mapping[str, str]
    after: Mapping[str, str]
    bugs: tuple[Bug, ...]
    forbidden: tuple[str, ...] = ()
    repo_files: tuple[str, ...] = ()  # other paths the repository holds (names only: where tests are found)

    @property
    def clean(self) -> bool:
        """A case with nothing to find."""
        return not self.bugs

    @property
    def diff(self) -> str:
        """The change as `git diff` text."""
        return unified_diff(self.before, self.after)


def unified_diff(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """A git-style diff of two path -> text maps (added, deleted and modified files; 3 lines of context)."""
    out: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        header = [f"diff --git a/{path} b/{path}\n"]
        if old is None:
            header.append("new file mode 100644\n")
        elif new is None:
            header.append("deleted file mode 100644\n")
        lines = difflib.unified_diff(
            _lines(old), _lines(new),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}" if new is not None else "/dev/null",
        )
        out += header + [line if line.endswith("\n") else line + "\n" for line in lines]
    return "".join(out)


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    return (text if text.endswith("\n") else text + "\n").splitlines(keepends=True)


def _text(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise CaseError(f"{where}: `{key}` must be a non-empty string")
    return value


def _files(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CaseError(f"{where}: `{key}` must map paths to file texts")
    return dict(value)


def _bug(data: Any, after: Mapping[str, str], where: str) -> Bug:
    if not isinstance(data, dict):
        raise CaseError(f"{where}: each bug is a mapping")
    path, at = _text(data, "path", where), _text(data, "at", where)
    text = after.get(path)
    if text is None:
        raise CaseError(f"{where}: bug path {path!r} is not a file after the change")
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if at in line]
    if len(hits) != 1:
        raise CaseError(f"{where}: `at` {at!r} occurs {len(hits)} times in {path}; it must occur once")
    span = data.get("lines", 1)
    keywords = data.get("keywords")
    if not isinstance(span, int) or span < 1:
        raise CaseError(f"{where}: `lines` must be a positive integer")
    if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k for k in keywords):
        raise CaseError(f"{where}: `keywords` must be a non-empty list of words")
    return Bug(path, hits[0], hits[0] + span - 1, _text(data, "must_say", where), tuple(k.lower() for k in keywords))


def parse_case(name: str, data: Any) -> Case:
    """A Case from one file's parsed YAML; raises CaseError naming what is wrong."""
    if not isinstance(data, dict):
        raise CaseError(f"{name}: a case is a mapping")
    before, after = _files(data, "before", name), _files(data, "after", name)
    if before == after:
        raise CaseError(f"{name}: `before` and `after` describe no change")
    bugs = data.get("bugs") or []
    if not isinstance(bugs, list):
        raise CaseError(f"{name}: `bugs` must be a list")
    forbidden = data.get("forbidden") or []
    repo_files = data.get("repo_files") or []
    if not all(isinstance(x, str) for x in [*forbidden, *repo_files]):
        raise CaseError(f"{name}: `forbidden` and `repo_files` are lists of strings")
    return Case(
        name=name, area=_text(data, "area", name), title=_text(data, "title", name),
        body=_text(data, "body", name, default=""), before=before, after=after,
        bugs=tuple(_bug(b, after, f"{name}, bug {i + 1}") for i, b in enumerate(bugs)),
        forbidden=tuple(f.lower() for f in forbidden), repo_files=tuple(repo_files),
    )


def load_cases(directory: Path = CASES_DIR, only: Sequence[str] = ()) -> list[Case]:
    """Every case in `directory` (sorted by name), or only those named; raises CaseError for a bad or unknown one."""
    paths = sorted(directory.glob("*.yml"))
    known = {p.stem for p in paths}
    unknown = sorted(set(only) - known)
    if unknown:
        raise CaseError(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    cases = []
    for path in paths:
        if only and path.stem not in only:
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CaseError(f"{path.name}: not valid YAML: {exc}") from None
        cases.append(parse_case(path.stem, data))
    return cases
