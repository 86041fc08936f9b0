"""`python -m bot review`: the App's reviewer on a local diff or a pull request, printed to the terminal.

Two sources, one core (`bot.analysis.make_scope` + `analyse`, the App's prompts and reviewer):

- `--diff FILE` (or `-` for stdin): a `git diff` text, reviewed with the server's default configuration.
- `OWNER/REPO#N` with `GITHUB_TOKEN`: the pull request and its diff read with the token (`bot.github.
  token_repo_client`), the repository's `.github/senior-review.yml` from the BASE branch (and the owner's
  `.github` repository when the token can read it), nothing written unless `--post`, which submits one COMMENT
  review rendered exactly like the App's (`bot.render.render_review_body`, the placement from the analysis).

stdout carries only the result (`text`, `json` or `github` annotations); progress, warnings and errors go to
stderr (a live status line on a terminal, plain lines otherwise). Text from the model, the diff or GitHub is
printed with control characters replaced, so nothing it contains can drive the terminal. Exit codes: 0, or 1
when a finding reaches `--fail-on`; 2 for usage and configuration errors (`bot.cli` maps other errors to 1).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any, TypeVar

from bot.domain import Finding, NotReviewed, PullRequest, ReviewToPost, Severity, Usage, unique_paths
from bot.errors import ConfigError, Forbidden, NotFound, StaleHead, Unprocessable
from bot.render import plural
from bot.settings import Settings, load_settings

if TYPE_CHECKING:  # the heavy modules (anthropic, githubkit) load after the arguments and the key are checked
    from bot.analysis import Analysis
    from bot.config.load import EffectiveConfig
    from bot.contract import PullContext
    from bot.diff import Diff
    from bot.github.payloads import PostedReview
    from bot.github.repo import RepoClient

T = TypeVar("T")
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
LOCAL_JOB_ID = "local"  # the review marker's job id for reviews posted from the terminal
_TARGET = re.compile(r"^(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)#(?P<number>[0-9]+)$")
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


def run_local_review(args: argparse.Namespace) -> int:
    """Entry point from the CLI: validate arguments, run the review, print it; returns the exit code."""
    if bool(args.diff) == bool(args.target):
        _say("review: give exactly one of --diff FILE (or - for stdin) and OWNER/REPO#N")
        return EXIT_USAGE
    if args.post and not args.target:
        _say("review: --post needs OWNER/REPO#N")
        return EXIT_USAGE
    match = _TARGET.match(args.target) if args.target else None
    if args.target and match is None:
        _say(f"review: {_clean(args.target)!r} is not OWNER/REPO#N")
        return EXIT_USAGE
    settings = load_settings()
    if settings.anthropic_api_key is None or not settings.anthropic_api_key.get_secret_value().strip():
        _say("review: set ANTHROPIC_API_KEY (your Anthropic API key) to run a review")
        return EXIT_USAGE
    _tolerant(sys.stdout)
    if match is not None:
        token = (os.environ.get("GITHUB_TOKEN") or "").strip()
        if not token:
            _say("review: set GITHUB_TOKEN (a token that can read the repository) to review a pull request")
            return EXIT_USAGE
        work = review_pull_request(settings, token, match["owner"], match["repo"], int(match["number"]),
                                   post=args.post, status=_Status(sys.stderr))
    else:
        try:
            data = sys.stdin.buffer.read() if args.diff == "-" else _read(args.diff)
        except OSError as exc:
            _say(f"review: cannot read {_clean(args.diff)}: {exc.strerror}")
            return EXIT_USAGE
        work = review_local_diff(settings, data.decode("utf-8", errors="replace"), args.diff, _Status(sys.stderr))
    result = asyncio.run(work)
    print_result(result, args.format, sys.stdout)
    return exit_code(result.analysis, args.fail_on)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tolerant(stream: IO[str]) -> None:
    """Never crash on a character the terminal's encoding lacks (e.g. a Latin-1 locale): print a replacement."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


# ---------------------------------------------------------------------------------------- sources


async def review_local_diff(settings: Settings, text: str, source: str, status: _Status | None = None) -> LocalResult:
    """Review a `git diff` text with the server's default configuration (decoded like GitHub's diff: UTF-8,
    invalid bytes replaced)."""
    from bot.config.load import default_config
    from bot.contract import PullContext
    from bot.diff import parse_diff

    status = status or _Status(None)
    diff = parse_diff(text)
    if not diff.files:
        status.line("review: the diff holds no files (is it `git diff` output?)")
    context = PullContext(repo="local", title="(local diff)", body="")
    effective = default_config(settings)
    analysis = await status.around(_analyse(settings, effective, diff, context, "", status), "reviewing")
    return LocalResult(analysis, source)


async def review_pull_request(
    settings: Settings, token: str, owner: str, repo: str, number: int, *, post: bool = False,
    status: _Status | None = None, client: RepoClient | None = None,
) -> LocalResult:
    """Read `owner/repo#number` with `token`, review it like the App, and with `post` submit one review."""
    from bot.config.load import load_effective_config
    from bot.contract import PullContext
    from bot.github.auth import token_repo_client

    status = status or _Status(None)
    gh = client or token_repo_client(settings, token, owner, repo)
    try:
        status.line(f"reading {owner}/{repo}#{number} ...")
        pr = await gh.get_pull(number)
        effective = await load_effective_config(_TokenConfigReader(settings, token, gh), owner, repo,
                                                pr.default_branch or None, settings)
        notes = [f"configuration problem: {problem}" for problem in effective.problems]
        if not effective.config.enabled:
            if post:
                raise ConfigError(f"{owner}/{repo}'s configuration disables reviews (enabled: false); nothing posted")
            notes.append("this repository's configuration disables reviews (enabled: false); reviewing anyway")
        if pr.state != "open":
            notes.append(f"the pull request is {pr.state}")
        for note in notes:
            status.line(f"review: {note}")
        from bot.diff import diff_from

        raw = await gh.get_diff(number)
        diff = diff_from(raw.text, raw.file_entries)
        context = PullContext(repo=pr.full_name, title=pr.title, body=pr.body)
        repo_url = f"{settings.web_url}/{pr.full_name}"
        analysis = await status.around(_analyse(settings, effective, diff, context, repo_url, status), "reviewing")
        result = LocalResult(analysis, f"{pr.full_name}#{pr.number}", raw.not_reviewed, pr, None, tuple(notes))
        if post:
            status.line("posting the review ...")
            result = LocalResult(analysis, result.source, result.not_reviewed, pr,
                                 await _post(gh, pr, diff, effective, result, repo_url), result.notes)
            status.line(f"posted review {result.posted.id if result.posted else ''}")
        return result
    finally:
        if client is None:
            await gh.app.aclose()


class _TokenConfigReader:
    """The App's configuration layers read with the token: this repository through `gh`, the owner's `.github`
    repository through another token client (skipped when the token cannot read it)."""

    def __init__(self, settings: Settings, token: str, gh: RepoClient) -> None:
        self._settings, self._token, self._gh = settings, token, gh

    async def get_file(self, owner: str, repo: str, path: str, ref: str | None) -> str | None:
        from bot.github.auth import token_repo_client

        if (owner, repo) == (self._gh.owner, self._gh.repo):
            return await self._gh.get_file(path, ref)
        other = token_repo_client(self._settings, self._token, owner, repo)
        try:
            return await other.get_file(path, ref)
        except (NotFound, Forbidden, Unprocessable):
            return None
        finally:
            await other.app.aclose()


async def _analyse(
    settings: Settings, effective: EffectiveConfig, diff: Diff, context: PullContext, repo_url: str, status: _Status
) -> Analysis:
    """`make_scope` + `analyse` with a reviewer built like the App's, announcing the size of the work first."""
    from bot.analysis import analyse, batch_inputs, make_scope, select_files
    from bot.model import Reviewer, make_client

    scope = make_scope(effective, diff, diff, context, batch_tokens=settings.batch_token_budget, repo_url=repo_url)
    files, _ = select_files(scope)
    batches = batch_inputs(files, scope.batch_tokens)
    status.stage(f"reviewing {plural(len(files), 'file')} in {plural(len(batches), 'batch')} ({effective.model})")
    model = make_client(settings)
    try:
        reviewer = Reviewer(model, effective.model, effective.effort, verify=effective.config.review.verify,
                            concurrency=settings.model_concurrency,
                            deadline_s=settings.review_deadline_seconds)
        return await analyse(scope, reviewer)
    finally:
        await model.close()


async def _post(
    gh: RepoClient, pr: PullRequest, diff: Diff, effective: EffectiveConfig, result: LocalResult, repo_url: str
) -> PostedReview:
    """One COMMENT review, rendered as the App renders it; refused when the head moved during the review."""
    from bot.render import Coverage, RunStats, render_review_body

    current = await gh.get_pull(pr.number)
    if current.head_sha != pr.head_sha:
        raise StaleHead(f"the head moved from {pr.head_sha[:12]} to {current.head_sha[:12]} during the review; "
                        "nothing was posted")
    analysis = result.analysis
    outcome = analysis.outcome
    body = render_review_body(
        inline=[item.finding for item, _ in analysis.placement.inline],
        unplaced=analysis.placement.unplaced,
        coverage=Coverage(analysis.reviewed, result.all_not_reviewed, pr.head_sha),
        stats=RunStats(outcome.usage, outcome.cost_usd, outcome.model) if outcome else RunStats(Usage()),
        job_id=LOCAL_JOB_ID,
        below_threshold=[i.finding for i in analysis.placement.below_threshold],
        min_severity=effective.config.min_inline_severity,
        suppressed=analysis.decision.suppressed_counts(),
        repo_url=repo_url,
    )
    from bot.diff import is_placeable

    comments = tuple(comment for _, comment in analysis.placement.inline)
    return await gh.post_review(pr.number, ReviewToPost(pr.head_sha, body.text, comments),
                                is_placeable=partial(is_placeable, diff),
                                max_inline=effective.config.max_inline_comments)


# ---------------------------------------------------------------------------------------- progress


class _Status:
    """Progress on stderr: a live status line on a terminal, plain lines otherwise (stream None: silent)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.label = ""

    def line(self, text: str) -> None:
        """One plain line."""
        if self.stream is not None:
            print(_clean(text), file=self.stream, flush=True)

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
                    stream.write(f"\r\033[K{_clean(self.label)} ... {time.monotonic() - started:.0f}s")
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


# ---------------------------------------------------------------------------------------- output


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


def _clean(text: str) -> str:
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
        print(f"{_clean(result.source)}: {_clean(pr.title)} (head {pr.head_sha[:12]})", file=out)
    summary = _summary(a)
    if summary:
        print("", file=out)
        for line in _clean(summary).splitlines():
            print(line, file=out)
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
        side = " (old side)" if f.side.value == "LEFT" else ""
        print(f"  line {lines}{side} [{label}] {_clean(f.title)}", file=out)
        for body_line in _clean(f.body).splitlines():
            print(f"      {body_line}", file=out)
        if f.suggestion:
            print("      suggested replacement:", file=out)
            for code in _clean(f.suggestion).splitlines():
                print(f"        | {code}", file=out)
    not_reviewed = result.all_not_reviewed
    print(f"\n{plural(len(findings), 'finding')}; {plural(len(a.reviewed), 'file')} reviewed, "
          f"{len(not_reviewed)} not reviewed", file=out)
    for item in not_reviewed:
        print(f"  not reviewed: {_clean(item.path)} ({_clean(item.reason)})", file=out)
    below = a.placement.below_threshold
    if below:
        print(f"  {plural(len(below), 'finding')} below the configured severity threshold not shown", file=out)
    if a.outcome is not None:
        u = a.outcome.usage
        print(
            f"tokens: {u.input_tokens} in, {u.output_tokens} out, {u.cache_read_input_tokens} cache read, "
            f"{u.cache_creation_input_tokens} cache write; cost ${a.outcome.cost_usd:.4f} ({_clean(a.outcome.model)})",
            file=out,
        )
    if result.posted is not None:
        print(f"posted review {result.posted.id} {_clean(result.posted.html_url)}".rstrip(), file=out)


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
    return _clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _print_github(result: LocalResult, out: IO[str]) -> None:
    for f in _findings(result):
        title = _escape_property(f"{f.title} ({f.severity.value}, {f.category.value})")
        props = f"file={_escape_property(f.path)},line={f.start_line},endLine={f.end_line},title={title}"
        print(f"::{_LEVEL[f.severity.value]} {props}::{_escape_data(f.body)}", file=out)
    for item in result.all_not_reviewed:
        where = "" if item.path == "*" else f" file={_escape_property(item.path)}"
        print(f"::notice{where}::{_escape_data('not reviewed: ' + item.reason)}", file=out)

