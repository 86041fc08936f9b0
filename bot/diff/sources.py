"""A `Diff` from what GitHub serves: the unified diff, or (diff too large) the files API's per-file patches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.diff.parse import parse_diff
from bot.diff.types import Diff, DiffParseError, FileDiff, FileStatus, Hunk, diff_of

_API_STATUS = {
    "added": FileStatus.ADDED,
    "removed": FileStatus.DELETED,
    "modified": FileStatus.MODIFIED,
    "renamed": FileStatus.RENAMED,
    "copied": FileStatus.COPIED,
    "changed": FileStatus.MODIFIED,
    "unchanged": FileStatus.MODIFIED,
}


def _api_hunks(path: str, patch: str) -> tuple[Hunk, ...]:
    """Parse a files-API `patch` (header-less hunks) into hunks."""
    body = patch if patch.endswith("\n") else patch + "\n"
    try:
        files = parse_diff(f"--- a/f\n+++ b/f\n{body}").files
    except DiffParseError as exc:
        raise DiffParseError(f"patch of {path}: {exc}") from exc
    return files[0].hunks if files else ()


def _api_file(entry: Mapping[str, Any]) -> FileDiff:
    """One `pulls/{n}/files` entry as a `FileDiff`."""
    path = str(entry["filename"])
    raw_status = str(entry.get("status", "modified"))
    status = _API_STATUS.get(raw_status, FileStatus.MODIFIED)
    old_path = None if status is FileStatus.ADDED else str(entry.get("previous_filename") or path)
    patch = entry.get("patch")
    changes = int(entry.get("changes") or 0) or int(entry.get("additions") or 0) + int(entry.get("deletions") or 0)
    if patch:
        hunks = _api_hunks(path, str(patch))
        if raw_status in ("changed", "unchanged") and not hunks:
            status = FileStatus.MODE_ONLY
        return FileDiff(path, old_path, status, hunks)
    if status in (FileStatus.RENAMED, FileStatus.COPIED) and changes == 0:
        return FileDiff(path, old_path, status)
    if raw_status in ("changed", "unchanged") and changes == 0:
        return FileDiff(path, old_path, FileStatus.MODE_ONLY)
    if changes == 0:
        return FileDiff(path, old_path, status, (), "binary file (GitHub shows no textual patch)")
    return FileDiff(path, old_path, status, (), f"too large: GitHub omitted the patch ({changes} changed lines)")


def diff_from_files_api(entries: Sequence[Mapping[str, Any]]) -> Diff:
    """Build a `Diff` from `GET /repos/{o}/{r}/pulls/{n}/files` entries (files without `patch` are not reviewable)."""
    return diff_of([_api_file(e) for e in entries])


def diff_from(text: str | None, file_entries: Sequence[Mapping[str, Any]] | None) -> Diff:
    """The unified diff when GitHub served one, else (diff too large) the files API's patches."""
    if text is not None:
        return parse_diff(text)
    return diff_from_files_api(list(file_entries or ()))
