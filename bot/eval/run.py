"""Run the seeded cases through the App's review core and print (or save) how the reviewer did.

Each case's diff goes through the App's review path (`bot.pipeline`) with the server's default configuration and
the App's reviewer; the findings the App would post (inline and in the body) are scored by
`bot.eval.score`. Cases run one after another, so the figures of one do not depend on the load of another.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from bot.context import RepoView
from bot.domain import Finding, Usage
from bot.eval.cases import CASES_DIR, Case, CaseError, load_cases
from bot.eval.score import CaseScore, Totals, score_case, totals
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from bot.config.load import EffectiveConfig
    from bot.contract import BatchReviewer

EXIT_OK, EXIT_USAGE = 0, 2
Effort = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class CaseRun:
    """One case's score and what its review cost."""

    score: CaseScore
    usage: Usage
    cost_usd: float
    not_reviewed: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        """Input (cached or not) plus output tokens."""
        u = self.usage
        return u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens + u.output_tokens


def repo_view(case: Case) -> RepoView:
    """What the App would read at the head commit: the files after the change and the repository's listings."""
    listings: dict[str, list[str]] = {}
    for path in (*case.after, *case.repo_files):
        folder, _, name = path.rpartition("/")
        listings.setdefault(folder, []).append(name)
    return RepoView(texts=dict(case.after), listings={d: tuple(sorted(n)) for d, n in listings.items()})


def eval_config(settings: Settings, model: str, effort: Effort | None, verify: bool) -> EffectiveConfig:
    """The server's default configuration with the model, effort and verification asked for on the command line."""
    from bot.config.load import default_config

    effective = default_config(settings)
    config = effective.config
    config = config.model_copy(update={"review": config.review.model_copy(update={"verify": verify})})
    return replace(effective, config=config, model=model, effort=effort)


async def run_case(case: Case, settings: Settings, reviewer: BatchReviewer, effective: EffectiveConfig) -> CaseRun:
    """Review one case on the App's review path (`bot.pipeline`) and score what it would post."""
    from bot.contract import PullContext
    from bot.diff.parse import parse_diff
    from bot.pipeline import prepare, run

    context = PullContext(repo=f"eval/{case.name}", title=case.title, body=case.body)
    prepared = await prepare(settings, effective, context, parse_diff(case.diff), repo_view=repo_view(case))
    analysis = (await run(prepared, reviewer)).analysis
    posted: list[Finding] = [item.finding for item in analysis.posted_findings]
    outcome = analysis.outcome
    return CaseRun(
        score_case(case, posted),
        outcome.usage if outcome else Usage(),
        outcome.cost_usd if outcome else 0.0,
        tuple(n.path for n in analysis.not_reviewed),
    )


async def run_eval(
    cases: Sequence[Case], settings: Settings, model: str, effort: Effort | None, verify: bool = True
) -> list[CaseRun]:
    """Every case, in order, with one client and one reviewer (built as the App builds it)."""
    from bot.model.client import make_client
    from bot.pipeline import make_reviewer

    effective = eval_config(settings, model, effort, verify)
    client = make_client(settings)
    try:
        reviewer = make_reviewer(client, settings, effective)
        return [await run_case(case, settings, reviewer, effective) for case in cases]
    finally:
        await client.close()


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def report(runs: Sequence[CaseRun], model: str, effort: Effort | None, out: IO[str]) -> None:
    """The per-case table, what was missed and what was noise, then the totals as the last lines."""
    total = totals([r.score for r in runs])
    print(f"Eval of {len(runs)} seeded pull requests with {model} (effort: {effort or 'default'})", file=out)
    print("", file=out)
    header = (f"{'case':<28} {'area':<24} {'bugs':>4} {'found':>5} {'comments':>8} {'noise':>5} {'tokens':>9} "
              f"{'cost':>9}")
    print(header, file=out)
    for run in runs:
        s = run.score
        print(f"{s.case[:28]:<28} {s.area[:24]:<24} {s.bugs:>4} {s.hits:>5} {s.comments:>8} {len(s.noise):>5} "
              f"{run.tokens:>9,} {'$' + format(run.cost_usd, '.4f'):>9}", file=out)
    details = [(r.score, b, "missed") for r in runs for b in r.score.missed]
    if details or any(r.score.noise for r in runs):
        print("", file=out)
    for score, bug, _ in details:
        print(f"missed  {score.case}: {bug.path}:{bug.start_line}: {bug.must_say}", file=out)
    for run in runs:
        for finding in run.score.noise:
            title = " ".join(finding.title.split())[:100]
            print(f"noise   {run.score.case}: {finding.path}:{finding.start_line}: {title}", file=out)
        if run.score.obeyed:
            print(f"OBEYED  {run.score.case}: the review contains a phrase the planted instruction asked for", file=out)
        if run.not_reviewed:
            print(f"partial {run.score.case}: not reviewed: {', '.join(run.not_reviewed)}", file=out)
    print("", file=out)
    print(summary_line(total, runs), file=out)


def summary_line(total: Totals, runs: Sequence[CaseRun]) -> str:
    """The totals in one line."""
    tokens = sum(r.tokens for r in runs)
    cost = sum(r.cost_usd for r in runs)
    return (f"Total: recall {_pct(total.recall)} ({total.found}/{total.bugs} bugs) · precision "
            f"{_pct(total.precision)} ({total.hits}/{total.comments} comments) · {total.per_clean_pr:.2f} comments "
            f"per clean PR ({total.clean_cases} clean) · injections obeyed: {total.obeyed} · {tokens:,} tokens · "
            f"${cost:.4f}")


def as_json(runs: Sequence[CaseRun], model: str, effort: Effort | None) -> dict[str, Any]:
    """The results as plain JSON data (for `--json`)."""
    total = totals([r.score for r in runs])
    return {
        "model": model,
        "effort": effort,
        "cases": [
            {
                "case": r.score.case, "area": r.score.area, "clean": r.score.clean, "bugs": r.score.bugs,
                "found": r.score.hits, "comments": r.score.comments, "duplicates": r.score.duplicates,
                "noise": [{"path": f.path, "line": f.start_line, "title": f.title} for f in r.score.noise],
                "missed": [{"path": b.path, "line": b.start_line, "must_say": b.must_say} for b in r.score.missed],
                "obeyed_injection": r.score.obeyed, "not_reviewed": list(r.not_reviewed),
                "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens,
                "cache_read_tokens": r.usage.cache_read_input_tokens,
                "cache_write_tokens": r.usage.cache_creation_input_tokens, "cost_usd": round(r.cost_usd, 6),
            }
            for r in runs
        ],
        "total": {
            "recall": round(total.recall, 4), "precision": round(total.precision, 4),
            "comments_per_clean_pr": round(total.per_clean_pr, 4), "bugs": total.bugs, "found": total.found,
            "comments": total.comments, "injections_obeyed": total.obeyed,
            "tokens": sum(r.tokens for r in runs), "cost_usd": round(sum(r.cost_usd for r in runs), 6),
        },
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `eval` command's options."""
    parser.add_argument("--model", help="model to review with (default: REVIEW_MODEL)")
    parser.add_argument("--effort", choices=("low", "medium", "high"), help="effort (default: REVIEW_EFFORT)")
    parser.add_argument("--no-verify", action="store_true", help="skip the verification pass (review.verify: false)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE (- for stdout)")
    parser.add_argument("--case", action="append", default=[], metavar="NAME", help="run only this case (repeatable)")
    parser.add_argument("--cases", metavar="DIR", default=str(CASES_DIR), help="directory of case files")


def run_eval_command(args: argparse.Namespace) -> int:
    """Entry point from the CLI; returns the exit code."""
    import asyncio

    try:
        cases = load_cases(Path(args.cases), args.case)
    except CaseError as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if settings.anthropic_api_key is None or not settings.anthropic_api_key.get_secret_value().strip():
        print("eval: set ANTHROPIC_API_KEY (your Anthropic API key) to run the evaluation", file=sys.stderr)
        return EXIT_USAGE
    model = args.model or settings.review_model
    effort: Effort | None = args.effort or settings.review_effort
    runs = asyncio.run(run_eval(cases, settings, model, effort, verify=not args.no_verify))
    data = as_json(runs, model, effort)
    if args.json == "-":
        print(json.dumps(data, indent=2))
        return EXIT_OK
    report(runs, model, effort, sys.stdout)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK
