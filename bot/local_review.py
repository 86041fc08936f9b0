"""`python -m bot review`: the App's reviewer on a local diff or a pull request, printed to the terminal.

Two sources, the App's review path (`bot.pipeline`: the same configuration reader, reviewer, analysis and
rendering); only where the result goes differs:

- `--diff FILE` (or `-` for stdin): a `git diff` text, reviewed with the server's default configuration.
- `OWNER/REPO#N` with `GITHUB_TOKEN`: the pull request and its diff read with the token (`bot.github.
  token_repo_client`), the repository's `.github/senior-review.yml` from the BASE branch (and the owner's
  `.github` repository when the token can read it), nothing written unless `--post`, which submits one COMMENT
  review rendered and posted exactly like the App's (`bot.pipeline.post`).

stdout carries only the result, progress, warnings and errors go to stderr (`bot.local_output`). Exit codes: 0,
or 1 when a finding reaches `--fail-on`; 2 for usage and configuration errors (`bot.cli` maps other errors to 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, TYPE_CHECKING

from bot.errors import ConfigError
from bot.local_output import LocalResult, Status, clean, exit_code, print_result
from bot.render import plural
from bot.settings import Settings, load_settings

if TYPE_CHECKING:  # the heavy modules (anthropic, githubkit) load after the arguments and the key are checked
    from bot.config.load import EffectiveConfig
    from bot.config.reader import RepoFiles
    from bot.contract import PullContext
    from bot.diff.types import Diff
    from bot.domain import NotReviewed
    from bot.github.repo import RepoClient
    from bot.pipeline import Prepared, Reviewed

EXIT_USAGE = 2
LOCAL_JOB_ID = "local"  # the review marker's job id for reviews posted from the terminal
_TARGET = re.compile(r"^(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)#(?P<number>[0-9]+)$")


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
        _say(f"review: {clean(args.target)!r} is not OWNER/REPO#N")
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
                                   post=args.post, status=Status(sys.stderr))
    else:
        try:
            data = sys.stdin.buffer.read() if args.diff == "-" else _read(args.diff)
        except OSError as exc:
            _say(f"review: cannot read {clean(args.diff)}: {exc.strerror}")
            return EXIT_USAGE
        work = review_local_diff(settings, data.decode("utf-8", errors="replace"), args.diff, Status(sys.stderr))
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


async def review_local_diff(settings: Settings, text: str, source: str, status: Status | None = None) -> LocalResult:
    """Review a `git diff` text with the server's default configuration (decoded like GitHub's diff: UTF-8,
    invalid bytes replaced)."""
    from bot.config.load import default_config
    from bot.contract import PullContext
    from bot.diff.parse import parse_diff

    status = status or Status(None)
    diff = parse_diff(text)
    if not diff.files:
        status.line("review: the diff holds no files (is it `git diff` output?)")
    context = PullContext(repo="local", title="(local diff)", body="")
    prepared, reviewed = await _review(settings, default_config(settings), context, diff, "", status)
    return LocalResult(reviewed.analysis, source, prepared.not_reviewed)


async def review_pull_request(
    settings: Settings, token: str, owner: str, repo: str, number: int, *, post: bool = False,
    status: Status | None = None, client: RepoClient | None = None,
) -> LocalResult:
    """Read `owner/repo#number` with `token`, review it like the App, and with `post` submit one review."""
    from bot.config.load import load_effective_config
    from bot.config.reader import ConfigReader
    from bot.contract import PullContext
    from bot.diff.sources import diff_from
    from bot.github.auth import token_repo_client
    from bot.pipeline import post as post_review

    @asynccontextmanager
    async def open_repo(other_owner: str, other_repo: str) -> AsyncIterator[RepoFiles]:
        other = token_repo_client(settings, token, other_owner, other_repo)
        try:
            yield other
        finally:
            await other.app.aclose()

    status = status or Status(None)
    gh = client or token_repo_client(settings, token, owner, repo)
    try:
        status.line(f"reading {owner}/{repo}#{number} ...")
        pr = await gh.get_pull(number)
        effective = await load_effective_config(ConfigReader(gh, open_repo), owner, repo, pr.default_branch or None,
                                                settings)
        notes = [f"configuration problem: {problem}" for problem in effective.problems]
        if not effective.config.enabled:
            if post:
                raise ConfigError(f"{owner}/{repo}'s configuration disables reviews (enabled: false); nothing posted")
            notes.append("this repository's configuration disables reviews (enabled: false); reviewing anyway")
        if pr.state != "open":
            notes.append(f"the pull request is {pr.state}")
        for note in notes:
            status.line(f"review: {note}")
        raw = await gh.get_diff(number)
        diff = diff_from(raw.text, raw.file_entries)
        context = PullContext(repo=pr.full_name, title=pr.title, body=pr.body)
        repo_url = f"{settings.web_url}/{pr.full_name}"
        prepared, reviewed = await _review(settings, effective, context, diff, repo_url, status, pr.head_sha,
                                           raw.not_reviewed)
        posted = None
        if post:
            status.line("posting the review ...")
            posted, _ = await post_review(gh, pr, prepared, reviewed, effective, job_id=LOCAL_JOB_ID,
                                          repo_url=repo_url)
            status.line(f"posted review {posted.id}")
        return LocalResult(reviewed.analysis, f"{pr.full_name}#{pr.number}", prepared.not_reviewed, pr, posted,
                           tuple(notes))
    finally:
        if client is None:
            await gh.app.aclose()


async def _review(
    settings: Settings, effective: EffectiveConfig, context: PullContext, diff: Diff, repo_url: str, status: Status,
    head_sha: str = "", not_reviewed: tuple[NotReviewed, ...] = (),
) -> tuple[Prepared, Reviewed]:
    """The App's review path (`bot.pipeline`) without a spend gate, announcing the size of the work first."""
    from bot.model.client import make_client
    from bot.pipeline import make_reviewer, prepare, run

    prepared = await prepare(settings, effective, context, diff, repo_url=repo_url, head_sha=head_sha,
                             not_reviewed=not_reviewed)
    files, batches = prepared.planned.files, prepared.planned.batches
    label = f"reviewing {plural(len(files), 'file')} in {plural(len(batches), 'batch')} ({effective.model})"
    status.stage(label)
    model = make_client(settings)
    try:
        reviewed = await status.around(run(prepared, make_reviewer(model, settings, effective)), label)
    finally:
        await model.close()
    return prepared, reviewed
