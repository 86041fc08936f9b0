"""`python -m bot review`: the App's reviewer on a local diff or a pull request, printed to the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from bot.analysis import Analysis, analyse, make_scope
from bot.config import default_config
from bot.diff import Diff, parse_diff
from bot.domain import Finding, Severity
from bot.errors import ConfigError
from bot.model import PullContext, Reviewer, make_client
from bot.settings import Settings, load_settings

T = TypeVar("T")
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
_TARGET = re.compile(r"^(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)#(?P<number>[0-9]+)$")
_COLOURS = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m", "low": "\033[36m"}
_RESET = "\033[0m"


@dataclass(frozen=True, slots=True)
class LocalResult:
    """What one terminal review produced, ready for printing."""

    analysis: Analysis
    source: str


def run_local_review(args: argparse.Namespace) -> int:
    """Entry point from the CLI: validate arguments, run the review, print it; returns the exit code."""
    if bool(args.diff) == bool(args.target):
        print("review: give exactly one of --diff FILE (or - for stdin) and OWNER/REPO#N", file=sys.stderr)
        return EXIT_USAGE
    if args.post and not args.target:
        print("review: --post needs OWNER/REPO#N", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if settings.anthropic_api_key is None and not os.environ.get("ANTHROPIC_API_KEY"):
        print("review: set ANTHROPIC_API_KEY (your Anthropic API key) to run a review", file=sys.stderr)
        return EXIT_USAGE
    if args.target:
        return _review_pull_request(args, settings)
    try:
        text = sys.stdin.read() if args.diff == "-" else _read(args.diff)
    except OSError as exc:
        print(f"review: cannot read {args.diff}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    diff = parse_diff(text)
    context = PullContext(repo="local", title="(local diff)", body="")
    result = asyncio.run(_with_progress(review_diff(settings, diff, context), sys.stderr))
    print_result(LocalResult(result, args.diff), args.format, sys.stdout)
    return exit_code(result, args.fail_on)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def _review_pull_request(args: argparse.Namespace, settings: Settings) -> int:
    match = _TARGET.match(args.target)
    if match is None:
        print(f"review: {args.target!r} is not OWNER/REPO#N", file=sys.stderr)
        return EXIT_USAGE
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        print("review: set GITHUB_TOKEN (a read-only token is enough) to review a pull request", file=sys.stderr)
        return EXIT_USAGE
    raise ConfigError("review OWNER/REPO#N is not available yet; use --diff with `git diff base...head`")


async def review_diff(settings: Settings, diff: Diff, context: PullContext) -> Analysis:
    """Review a parsed diff with the server's default configuration."""
    effective = default_config(settings)
    client = make_client(settings)
    try:
        reviewer = Reviewer(
            client,
            effective.model,
            effective.effort,
            concurrency=settings.model_concurrency,
            deadline_s=settings.review_deadline_seconds,
        )
        scope = make_scope(effective, diff, diff, context, batch_tokens=settings.batch_token_budget)
        return await analyse(scope, reviewer)
    finally:
        await client.close()


async def _with_progress(work: Awaitable[T], stream: IO[str]) -> T:
    """Await `work`, showing a live status line on a terminal and plain start/finish lines otherwise."""
    started = time.monotonic()
    tty = stream.isatty()
    task = asyncio.ensure_future(work)
    if not tty:
        print("reviewing ...", file=stream, flush=True)
    while not task.done():
        if tty:
            stream.write(f"\r\033[Kreviewing ... {time.monotonic() - started:4.0f}s")
            stream.flush()
        await asyncio.wait([task], timeout=0.5)
    if tty:
        stream.write("\r\033[K")
    print(f"reviewed in {time.monotonic() - started:.1f}s", file=stream, flush=True)
    return task.result()


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


def _findings(result: LocalResult) -> list[Finding]:
    return sorted(
        (i.finding for i in result.analysis.posted_findings),
        key=lambda f: (f.path, f.start_line, -f.severity.rank),
    )


def _clean(text: str) -> str:
    """No control characters from the model or the diff reach the terminal."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f\x9b]", "?", text)


def _print_text(result: LocalResult, out: IO[str]) -> None:
    colour = out.isatty()
    findings = _findings(result)
    current = None
    for f in findings:
        if f.path != current:
            current = f.path
            print(f"\n{_clean(f.path)}", file=out)
        label = f"{f.severity.value}/{f.category.value}"
        if colour:
            label = f"{_COLOURS[f.severity.value]}{label}{_RESET}"
        lines = f"{f.start_line}" if f.start_line == f.end_line else f"{f.start_line}-{f.end_line}"
        print(f"  line {lines} [{label}] {_clean(f.title)}", file=out)
        for body_line in _clean(f.body).splitlines():
            print(f"      {body_line}", file=out)
        if f.suggestion:
            print("      suggested replacement:", file=out)
            for code in _clean(f.suggestion).splitlines():
                print(f"        | {code}", file=out)
    a = result.analysis
    print(f"\n{len(findings)} findings; {len(a.reviewed)} files reviewed, {len(a.not_reviewed)} not reviewed", file=out)
    for item in a.not_reviewed:
        print(f"  not reviewed: {_clean(item.path)} ({_clean(item.reason)})", file=out)
    if a.outcome is not None:
        u = a.outcome.usage
        print(
            f"tokens: {u.input_tokens} in, {u.output_tokens} out, {u.cache_read_input_tokens} cache read, "
            f"{u.cache_creation_input_tokens} cache write; cost ${a.outcome.cost_usd:.4f} ({a.outcome.model})",
            file=out,
        )


def to_json(result: LocalResult) -> dict[str, Any]:
    """The structured result for scripts (finding field names match the model's schema)."""
    a = result.analysis
    usage = a.outcome.usage if a.outcome else None
    return {
        "source": result.source,
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
        "reviewed": list(a.reviewed),
        "not_reviewed": [{"path": n.path, "reason": n.reason} for n in a.not_reviewed],
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
    }


def _print_json(result: LocalResult, out: IO[str]) -> None:
    json.dump(to_json(result), out, indent=2)
    out.write("\n")


_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}


def _escape_property(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _print_github(result: LocalResult, out: IO[str]) -> None:
    for f in _findings(result):
        title = _escape_property(f"{f.title} ({f.severity.value}, {f.category.value})")
        props = f"file={_escape_property(f.path)},line={f.start_line},endLine={f.end_line},title={title}"
        print(f"::{_LEVEL[f.severity.value]} {props}::{_escape_data(f.body)}", file=out)
    for item in result.analysis.not_reviewed:
        print(f"::notice file={_escape_property(item.path)}::{_escape_data('not reviewed: ' + item.reason)}", file=out)
