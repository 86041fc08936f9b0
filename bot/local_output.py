"""What the terminal shows of a review: the result on stdout (`text`, `json` or `github` annotations) and progress
on stderr (a live status line on a terminal, plain lines otherwise).

Text from the model, the diff or GitHub is printed with control characters replaced, so nothing it contains can
drive the terminal.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from bot.domain import Finding, NotReviewed, PullRequest, Severity, unique_paths
from bot.render import plural

if TYPE_CHECKING:
    from bot.analysis import Analysis
    from bot.github.payloads import PostedReview

T = TypeVar("T")
EXIT_OK, EXIT_FINDINGS = 0, 1
_COLOURS = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m", "low": "\033[36m"}
_RESET = "\033[0m"
# C0 controls but TAB and LF, DEL, C1 controls (CSI, OSC, DCS ... in 8-bit form), lone surrogates (undecodable
# bytes), and the bidirectional overrides/isolates that can make printed code read differently ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class LocalResult:
    """What one terminal review produced, ready for printing."""

    analysis: Analysis
    source: str
    not_reviewed: tuple[NotReviewed, ...] = ()  # the analysis's and the source's (e.g. GitHub gave no patch)
    pull: PullRequest | None = None
    posted: PostedReview | None = None
    notes: tuple[str, ...] = ()  # warnings shown on stderr (configuration problems ...), also in JSON

    @property
    def all_not_reviewed(self) -> tuple[NotReviewed, ...]:
        """Every file left out, once per path (the source's reasons first)."""
        return unique_paths((*self.not_reviewed, *self.analysis.not_reviewed))


class Status:
    """Progress on stderr: a live status line on a terminal, plain lines otherwise (stream None: silent)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.label = ""

    def line(self, text: str) -> None:
        """One plain line."""
        if self.stream is not None:
            print(clean(text), file=self.stream, flush=True)

    def stage(self, label: str) -> None:
        """What is running now: the live line's text on a terminal, a plain line otherwise."""
        self.label = label
        if not self.tty:
            self.line(f"{label} ...")

    async def around(self, work: Awaitable[T], label: str) -> T:
        """Await `work` under `label` (which `work` may refine with `stage`), with the elapsed time on a terminal."""
        self.label = label
        stream = self.stream
        started = time.monotonic()
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                if stream is not None and self.tty:
                    stream.write(f"\r\033[K{clean(self.label)} ... {time.monotonic() - started:.0f}s")
                    stream.flush()
                await asyncio.wait([task], timeout=0.25)
        finally:
            if not task.done():
                task.cancel()
            if stream is not None and self.tty:
                stream.write("\r\033[K")
                stream.flush()
        result = task.result()
        self.line(f"reviewed in {time.monotonic() - started:.1f}s")
        return result


# ---------------------------------------------------------------------------------------- result


def exit_code(analysis: Analysis, fail_on: str) -> int:
    """1 when a posted finding reaches `fail_on` (never with "never"), else 0."""
    if fail_on == "never":
        return EXIT_OK
    gate = Severity(fail_on).rank
    return EXIT_FINDINGS if any(i.finding.severity.rank >= gate for i in analysis.posted_findings) else EXIT_OK


def print_result(result: LocalResult, fmt: str, out: IO[str]) -> None:
    """Print in `text`, `json` or `github` (Actions annotations) format."""
    printers: dict[str, Callable[[LocalResult, IO[str]], None]] = {
        "text": _print_text,
        "json": _print_json,
        "github": _print_github,
    }
    printers[fmt](result, out)
    out.flush()


def _findings(result: LocalResult) -> list[Finding]:
    return sorted(
        (i.finding for i in result.analysis.posted_findings),
        key=lambda f: (f.path, f.start_line, -f.severity.rank),
    )


def _summary(analysis: Analysis) -> str:
    """The model's summaries of the reviewed batches, in batch order."""
    if analysis.outcome is None:
        return ""
    return "\n\n".join(b.summary for b in analysis.outcome.batches if b.error is None and b.summary)


def clean(text: str) -> str:
    """No control characters from the model, the diff or GitHub reach the terminal (each becomes `?`)."""
    return _UNSAFE.sub("?", text)


def _print_text(result: LocalResult, stream: IO[str]) -> None:
    colour = stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    out = io.StringIO()
    _write_text(result, out, colour)
    stream.write(out.getvalue().lstrip("\n"))


def _write_text(result: LocalResult, out: IO[str], colour: bool) -> None:
    a = result.analysis
    if result.pull is not None:
        pr = result.pull
        print(f"{clean(result.source)}: {clean(pr.title)} (head {pr.head_sha[:12]})", file=out)
    summary = _summary(a)
    if summary:
        print("", file=out)
        for line in clean(summary).splitlines():
            print(line, file=out)
    findings = _findings(result)
    current = None
    for f in findings:
        if f.path != current:
            current = f.path
            print(f"\n{clean(f.path)}", file=out)
        label = f"{f.severity.value}/{f.category.value}"
        if colour:
            label = f"{_COLOURS[f.severity.value]}{label}{_RESET}"
        lines = f"{f.start_line}" if f.start_line == f.end_line else f"{f.start_line}-{f.end_line}"
        side = " (old side)" if f.side.value == "LEFT" else ""
        print(f"  line {lines}{side} [{label}] {clean(f.title)}", file=out)
        for body_line in clean(f.body).splitlines():
            print(f"      {body_line}", file=out)
        if f.suggestion:
            print("      suggested replacement:", file=out)
            for code in clean(f.suggestion).splitlines():
                print(f"        | {code}", file=out)
    not_reviewed = result.all_not_reviewed
    print(f"\n{plural(len(findings), 'finding')}; {plural(len(a.reviewed), 'file')} reviewed, "
          f"{len(not_reviewed)} not reviewed", file=out)
    for item in not_reviewed:
        print(f"  not reviewed: {clean(item.path)} ({clean(item.reason)})", file=out)
    below = a.placement.below_threshold
    if below:
        print(f"  {plural(len(below), 'finding')} below the configured severity threshold not shown", file=out)
    if a.outcome is not None:
        u = a.outcome.usage
        print(
            f"tokens: {u.input_tokens} in, {u.output_tokens} out, {u.cache_read_input_tokens} cache read, "
            f"{u.cache_creation_input_tokens} cache write; cost ${a.outcome.cost_usd:.4f} ({clean(a.outcome.model)})",
            file=out,
        )
    if result.posted is not None:
        print(f"posted review {result.posted.id} {clean(result.posted.html_url)}".rstrip(), file=out)


def to_json(result: LocalResult) -> dict[str, Any]:
    """The structured result for scripts (finding field names match the model's schema)."""
    a = result.analysis
    usage = a.outcome.usage if a.outcome else None
    data: dict[str, Any] = {
        "source": result.source,
        "summary": _summary(a),
        "findings": [
            {
                "path": f.path,
                "start_line": f.start_line,
                "end_line": f.end_line,
                "side": f.side.value.lower(),
                "severity": f.severity.value,
                "category": f.category.value,
                "title": f.title,
                "body": f.body,
                "suggestion": f.suggestion,
            }
            for f in _findings(result)
        ],
        "below_threshold": len(a.placement.below_threshold),
        "reviewed": list(a.reviewed),
        "not_reviewed": [{"path": n.path, "reason": n.reason} for n in result.all_not_reviewed],
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
        },
        "cost_usd": a.outcome.cost_usd if a.outcome else 0.0,
        "model": a.outcome.model if a.outcome else None,
        "notes": list(result.notes),
    }
    if result.pull is not None:
        data["pull_request"] = {"repo": result.pull.full_name, "number": result.pull.number,
                                "head_sha": result.pull.head_sha, "title": result.pull.title}
        data["posted_review"] = None if result.posted is None else {
            "id": result.posted.id, "html_url": result.posted.html_url, "inline": len(result.posted.inline),
            "moved_to_body": len(result.posted.moved_to_body) + len(result.posted.overflow)}
    return data


def _print_json(result: LocalResult, out: IO[str]) -> None:
    # ensure_ascii (the default) writes every control character as a \u escape: the output stays plain ASCII.
    json.dump(to_json(result), out, indent=2)
    out.write("\n")


_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}


def _escape_property(text: str) -> str:
    """A workflow command property value (the escaping of @actions/core `toCommandProperties`)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _escape_data(text: str) -> str:
    """A workflow command message (@actions/core `escapeData`), control characters replaced first."""
    return clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _print_github(result: LocalResult, out: IO[str]) -> None:
    for f in _findings(result):
        title = _escape_property(f"{f.title} ({f.severity.value}, {f.category.value})")
        props = f"file={_escape_property(f.path)},line={f.start_line},endLine={f.end_line},title={title}"
        print(f"::{_LEVEL[f.severity.value]} {props}::{_escape_data(f.body)}", file=out)
    for item in result.all_not_reviewed:
        where = "" if item.path == "*" else f" file={_escape_property(item.path)}"
        print(f"::notice{where}::{_escape_data('not reviewed: ' + item.reason)}", file=out)
