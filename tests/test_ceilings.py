"""Budget ceilings across layers (server >= org `.github` >= repository) and configuration from the default branch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.config.ceilings import BUDGET_KEYS, Ceilings, within_ceilings
from bot.config.load import CONFIG_PATH, load_effective_config, problems_comment
from bot.registry import AppContext
from bot.review import run_review
from bot.services import ReviewRequest, Services
from bot.settings import Settings, load_settings
from tests.fakes.claude import FakeClaude
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

ORG = "acme/.github"


class MemoryReader:
    """An in-memory ConfigReader: files keyed by (owner/repo, ref)."""

    def __init__(self, files: dict[tuple[str, str | None], str]) -> None:
        self.files = files
        self.reads: list[tuple[str, str | None]] = []

    async def get_file(self, owner: str, repo: str, path: str, ref: str | None) -> str | None:
        assert path == CONFIG_PATH
        self.reads.append((f"{owner}/{repo}", ref))
        return self.files.get((f"{owner}/{repo}", ref))


@pytest.fixture
def settings() -> Settings:
    return load_settings(review_model="claude-sonnet-5-5",
                         allowed_models=("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-4-5"))


ORG_FILE = """\
budgets:
  max_cost_usd_per_installation_per_day: 1
  max_cost_usd_per_review: 0.5
allowed_models: [claude-sonnet-5-5, claude-haiku-4-5]
"""
GREEDY_REPO = """\
language: French
model: claude-opus-5-5
budgets:
  max_cost_usd_per_installation_per_day: 100000
  max_cost_usd_per_review: 1000
  max_tokens_per_review: 10000000
"""


async def test_a_repository_cannot_raise_the_organizations_ceilings(settings: Settings) -> None:
    reader = MemoryReader({(ORG, None): ORG_FILE, ("acme/api", "main"): GREEDY_REPO})
    effective = await load_effective_config(reader, "acme", "api", "main", settings)
    budgets = effective.config.budgets
    assert budgets.max_cost_usd_per_installation_per_day == 1
    assert budgets.max_cost_usd_per_review == 0.5
    assert budgets.max_tokens_per_review == settings.max_tokens_per_review  # the server's ceiling
    assert effective.model == "claude-sonnet-5-5"  # opus is outside the org's list
    assert effective.config.language == "French"  # the rest of the file still counts: nothing is lost
    by_line = {p.line: p for p in effective.problems}
    assert set(by_line) == {2, 4, 5, 6} and all(p.scope == "key" for p in effective.problems)
    assert "budgets.max_cost_usd_per_installation_per_day: 100,000 is above the ceiling 1 set by " \
           f"{ORG}:{CONFIG_PATH}" in by_line[4].message
    assert "ceiling 400,000 set by server settings" in by_line[6].message
    assert "'claude-opus-5-5' is not allowed" in by_line[2].message
    comment = problems_comment(effective.problems)
    assert "the higher layer's limit applies" in comment and "budgets.max_cost_usd_per_review" in comment


async def test_the_organization_cannot_raise_the_servers_ceilings_or_widen_its_models(settings: Settings) -> None:
    org = "budgets:\n  max_cost_usd_per_installation_per_day: 900\nallowed_models: [claude-sonnet-5-5, gpt-9]\n"
    reader = MemoryReader({(ORG, None): org})
    effective = await load_effective_config(reader, "acme", "api", "main", settings)
    assert effective.config.budgets.max_cost_usd_per_installation_per_day == 50
    assert effective.config.allowed_models is None
    budget, models = (str(p) for p in effective.problems)
    assert budget.startswith(f"{ORG}:{CONFIG_PATH}:2: budgets.max_cost_usd_per_installation_per_day: 900 is above")
    assert models.startswith(f"{ORG}:{CONFIG_PATH}:3: allowed_models: 'gpt-9' not in the list allowed by "
                             "server settings")


async def test_lowering_and_narrowing_are_accepted(settings: Settings) -> None:
    repo = "budgets:\n  max_cost_usd_per_review: 0.2\n  max_tokens_per_review: 50000\nmodel: claude-haiku-4-5\n"
    reader = MemoryReader({(ORG, None): ORG_FILE, ("acme/api", "main"): repo})
    effective = await load_effective_config(reader, "acme", "api", "main", settings)
    assert effective.problems == ()
    assert effective.config.budgets.max_cost_usd_per_review == 0.2
    assert effective.config.budgets.max_tokens_per_review == 50_000
    assert effective.config.budgets.max_cost_usd_per_installation_per_day == 1
    assert effective.model == "claude-haiku-4-5"


async def test_server_settings_are_the_top_ceiling(settings: Settings) -> None:
    low = load_settings(max_cost_usd_per_review=0.1, max_cost_usd_per_installation_per_day=2)
    reader = MemoryReader({("acme/api", "main"): "budgets:\n  max_cost_usd_per_review: 3\n"})
    effective = await load_effective_config(reader, "acme", "api", "main", low)
    assert effective.config.budgets.max_cost_usd_per_review == 0.1
    assert effective.config.budgets.max_cost_usd_per_installation_per_day == 2
    assert len(effective.problems) == 1


async def test_a_narrowed_list_without_the_default_model_uses_its_first_model(settings: Settings) -> None:
    reader = MemoryReader({(ORG, None): "allowed_models: [claude-haiku-4-5]\n"})
    effective = await load_effective_config(reader, "acme", "api", "main", settings)
    assert effective.model == "claude-haiku-4-5" and effective.problems == ()


_values = st.floats(min_value=0.01, max_value=100_000, allow_nan=False)


@hypothesis_settings(max_examples=80, deadline=None)
@given(server=_values, org=st.one_of(st.none(), _values), repo=st.one_of(st.none(), _values))
def test_the_effective_budget_is_never_above_any_layers_ceiling(server: float, org: float | None,
                                                                repo: float | None) -> None:
    budgets = {key: server for key in BUDGET_KEYS}
    ceilings = Ceilings(budgets, ("m",), {key: "server" for key in (*BUDGET_KEYS, "models")})
    effective = server
    for value, layer in ((org, "org"), (repo, "repo")):
        data: dict[str, Any] = {} if value is None else {"budgets": {"max_cost_usd_per_review": value}}
        kept, ceilings, violations = within_ceilings(data, ceilings, layer)
        if value is not None and value <= effective:
            effective = value
        assert bool(violations) == (value is not None and "max_cost_usd_per_review" not in kept["budgets"])
    assert ceilings.budgets["max_cost_usd_per_review"] == effective
    assert effective <= server and (org is None or effective <= org or org > server)


# ---------------------------------------------------------------- the default branch, whatever the PR targets


async def test_configuration_is_read_from_the_default_branch(settings: Settings) -> None:
    reader = MemoryReader({("acme/api", "trunk"): "enabled: false\n"})
    effective = await load_effective_config(reader, "acme", "api", "trunk", settings)
    assert not effective.config.enabled
    assert ("acme/api", "trunk") in reader.reads


async def test_a_pr_into_an_old_branch_does_not_escape_the_default_branchs_settings(
    fake_github: FakeGitHub, fake_claude: FakeClaude, app_context: AppContext
) -> None:
    # The default branch disables reviews; the old branch has no configuration file at all.
    fake_github.add_repo("octo", "repo", default_branch="main")
    fake_github.set_file("octo", "repo", "main", CONFIG_PATH, "enabled: false\n")
    fake_github.add_pull("octo", "repo", git_diff({"a.py": "x = 1\n"}, {"a.py": "x = 2\n"}), head_sha="a" * 40,
                         base_sha="0" * 40, base_ref="release-0.1")
    request = ReviewRequest(job_id=1, installation_id=100, owner="octo", repo="repo", number=1,
                            trigger="pull_request.opened")
    outcome = await run_review(request, Services.of(app_context))
    assert outcome.status == "skipped" and "disabled" in outcome.detail
    assert fake_claude.requests == []
    reads = fake_github.requests_to("GET", r"/repos/octo/repo/contents/")
    assert [r.query.get("ref") for r in reads] == ["main"]
