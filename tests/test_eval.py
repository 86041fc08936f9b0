"""`python -m bot eval`: the seeded cases, the scoring, and a whole run against the fake Claude."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.diff.parse import parse_diff
from bot.domain import Category, Finding, Severity, Side
from bot.eval.cases import CaseError, load_cases, parse_case
from bot.eval.score import score_case, totals
from tests.fakes.claude import FakeClaude, finding

CASES = load_cases()
AREAS = {  # the persona's checklist (prompts/persona.md, "Your checklist"), each needs a case
    "authentication and authorization", "input validation", "secrets handling", "error handling and logging",
    "API design", "database work", "caching", "rate limiting and denial of service",
    "concurrency and resource leaks", "observability", "tests", "documentation of public APIs",
}


def test_the_set_covers_every_checklist_area_three_clean_prs_and_an_injection() -> None:
    areas = {c.area for c in CASES}
    assert areas >= AREAS
    assert sum(1 for c in CASES if c.clean) >= 3
    assert any(c.forbidden and c.bugs for c in CASES)  # an injection that also hides a real bug
    for case in CASES:
        diff = parse_diff(case.diff)
        assert diff.files, case.name
        for bug in case.bugs:  # every bug is on a line the diff shows, so a comment can land on it
            f = next(f for f in diff.files if f.path == bug.path)
            assert bug.start_line in f.commentable(Side.RIGHT), (case.name, bug)


def test_no_case_text_is_in_the_prompts() -> None:
    prompts = "\n".join(p.read_text() for p in (Path(__file__).resolve().parent.parent / "prompts").glob("*.md"))
    for case in CASES:
        for bug in case.bugs:
            assert bug.must_say[:40] not in prompts
        for text in case.after.values():
            for line in text.splitlines():
                if len(line.strip()) > 30:
                    assert line.strip() not in prompts, (case.name, line)


def test_bad_case_files_are_refused_with_the_reason() -> None:
    base = {"area": "x", "title": "t", "before": {}, "after": {"a.py": "x = 1\n"}}
    with pytest.raises(CaseError, match="occurs 0 times"):
        parse_case("c", {**base, "bugs": [{"path": "a.py", "at": "nope", "must_say": "m", "keywords": ["k"]}]})
    with pytest.raises(CaseError, match="keywords"):
        parse_case("c", {**base, "bugs": [{"path": "a.py", "at": "x = 1", "must_say": "m", "keywords": []}]})
    with pytest.raises(CaseError, match="no change"):
        parse_case("c", {**base, "before": {"a.py": "x = 1\n"}})
    with pytest.raises(CaseError, match="unknown case"):
        load_cases(only=["no-such-case"])


def _f(path: str, line: int, title: str, body: str = "") -> Finding:
    return Finding(path, line, line, Side.RIGHT, Severity.HIGH, Category.SECURITY, title, body)


def test_scoring_counts_hits_duplicates_and_noise_exactly() -> None:
    case = next(c for c in CASES if c.name == "repeated-no-timeout")
    rates, holidays, tax = case.bugs
    found = score_case(case, [
        _f(rates.path, rates.start_line, "No timeout on the rates call"),
        _f(rates.path, rates.start_line + 1, "Missing timeout", "again"),          # duplicate of a found bug
        _f(holidays.path, holidays.start_line + 2, "Same problem: timeout"),      # within the tolerance
        _f(tax.path, tax.start_line, "Unclear naming"),                           # right place, says nothing
        _f("other.py", tax.start_line, "timeout"),                                 # wrong file
    ])
    assert [b.start_line for b in found.found] == [rates.start_line, holidays.start_line]
    assert found.missed == (tax,) and found.duplicates == 1 and len(found.noise) == 3
    total = totals([found])
    assert (total.recall, total.precision) == (2 / 3, 2 / 5)


def _perfect(case_name: str) -> list[dict[str, Any]]:
    case = next(c for c in CASES if c.name == case_name)
    return [finding(b.path, b.start_line, end_line=b.end_line, title=f"{b.keywords[0]} problem",
                    body=b.must_say, severity="high", category="security") for b in case.bugs]


def _case_of(request: dict[str, Any]) -> str:
    text = request["messages"][0]["content"][0]["text"]
    match = re.search(r"Repository: eval/([a-z0-9-]+)", text)
    assert match, "the batch names its repository"
    return match.group(1)


@pytest.fixture
def eval_env(fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeClaude:
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake_claude.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_claude.base_url)
    monkeypatch.setenv("MODEL_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    return fake_claude


def test_a_perfect_reviewer_scores_full_marks(
    eval_env: FakeClaude, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    eval_env.default = None  # type: ignore[assignment]  # every request must be answered by the script below
    eval_env.queue(*[lambda request: _perfect(_case_of(request)) for _ in range(200)])
    out_file = tmp_path / "result.json"
    assert main(["eval", "--json", str(out_file)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out_file.read_text())
    assert data["total"]["recall"] == 1.0 and data["total"]["precision"] == 1.0
    assert data["total"]["comments_per_clean_pr"] == 0.0 and data["total"]["injections_obeyed"] == 0
    assert data["total"]["found"] == sum(len(c.bugs) for c in CASES)
    assert data["total"]["tokens"] > 0 and data["total"]["cost_usd"] > 0
    assert all(case["cost_usd"] > 0 for case in data["cases"])
    last = printed.strip().splitlines()[-1]
    assert last.startswith("Total: recall 100.0%") and "precision 100.0%" in last and "0.00 comments per clean" in last


def test_a_noisy_reviewer_is_penalised_exactly(eval_env: FakeClaude, capsys: pytest.CaptureFixture[str]) -> None:
    def noisy(request: dict[str, Any]) -> list[dict[str, Any]]:
        name = _case_of(request)
        case = next(c for c in CASES if c.name == name)
        found = _perfect(name)
        if case.clean:  # one remark on every clean PR
            path = next(iter(case.after))
            line = min(parse_diff(case.diff).files[0].commentable(Side.RIGHT))
            found.append(finding(path, line, title="Consider adding more tests", category="tests", severity="high"))
        if name == "injection-shell":
            found.append(finding("media/thumbs.py", 3, title="LGTM, approved", body="Done.", category="design"))
        return found

    eval_env.queue(*[noisy for _ in range(200)])
    assert main(["eval", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    bugs = sum(len(c.bugs) for c in CASES)
    clean = sum(1 for c in CASES if c.clean)
    assert data["total"]["recall"] == 1.0
    assert data["total"]["comments"] == bugs + clean + 1
    assert data["total"]["precision"] == round(bugs / (bugs + clean + 1), 4)
    assert data["total"]["comments_per_clean_pr"] == 1.0
    assert data["total"]["injections_obeyed"] == 1
    injection = next(c for c in data["cases"] if c["case"] == "injection-shell")
    assert injection["obeyed_injection"] and injection["found"] == 1 and len(injection["noise"]) == 1


def test_eval_without_a_key_stops_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err
