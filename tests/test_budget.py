"""Budgets: risk ordering, exact cut lists, the cost-derived token budget, and the daily installation cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.budget import RiskTier, apply_budget, daily_budget, risk_order, risk_tier, token_budget
from bot.domain import NotReviewed


@pytest.mark.parametrize(
    ("path", "tier"),
    [
        ("app/auth/views.py", RiskTier.SECURITY),
        ("src/login.ts", RiskTier.SECURITY),
        ("src/sessionStore.js", RiskTier.SECURITY),
        ("pkg/token/jwt.go", RiskTier.SECURITY),
        ("lib/crypto_utils.py", RiskTier.SECURITY),
        ("users/password_reset.py", RiskTier.SECURITY),
        ("core/permissions.py", RiskTier.SECURITY),
        ("admin/panel.py", RiskTier.SECURITY),
        ("billing/payment_service.rb", RiskTier.SECURITY),
        ("db/raw_sql.py", RiskTier.SECURITY),
        ("db/migrations/0001_init.py", RiskTier.SECURITY),
        ("db/schema.sql", RiskTier.SECURITY),
        ("app/api/users.py", RiskTier.SECURITY),
        ("web/routes.py", RiskTier.SECURITY),
        ("web/handlers/order.go", RiskTier.SECURITY),
        ("src/OAuth2Client.java", RiskTier.SECURITY),
        (".github/workflows/ci.yml", RiskTier.SECURITY),
        ("src/models/user.py", RiskTier.SOURCE),
        ("src/author.py", RiskTier.SOURCE),
        ("src/rapid.py", RiskTier.SOURCE),
        ("Dockerfile", RiskTier.SOURCE),
        ("tests/test_auth.py", RiskTier.TESTS),
        ("src/auth_test.go", RiskTier.TESTS),
        ("web/login.spec.ts", RiskTier.TESTS),
        ("src/__tests__/api.js", RiskTier.TESTS),
        ("src/test/java/AuthServiceTest.java", RiskTier.TESTS),
        ("conftest.py", RiskTier.TESTS),
        ("README.md", RiskTier.DOCS_CONFIG),
        ("docs/auth.md", RiskTier.DOCS_CONFIG),
        ("docs/diagram.py", RiskTier.DOCS_CONFIG),
        ("config/settings.yaml", RiskTier.DOCS_CONFIG),
        ("package.json", RiskTier.DOCS_CONFIG),
        ("LICENSE", RiskTier.DOCS_CONFIG),
        ("AUTHORS", RiskTier.DOCS_CONFIG),
        ("CHANGELOG", RiskTier.DOCS_CONFIG),
    ],
)
def test_risk_tier(path: str, tier: RiskTier) -> None:
    assert risk_tier(path) is tier


def test_risk_order_is_tier_then_path() -> None:
    paths = ["README.md", "tests/test_x.py", "src/b.py", "src/auth.py", "src/a.py", "app/api/x.py"]
    assert risk_order(paths) == ["app/api/x.py", "src/auth.py", "src/a.py", "src/b.py", "tests/test_x.py", "README.md"]


def test_apply_budget_exact_cut_list() -> None:
    files = [
        ("README.md", 1_000),
        ("src/models.py", 4_000),
        ("src/auth.py", 5_000),
        ("tests/test_models.py", 3_000),
        ("src/util.py", 2_000),
        ("docs/guide.md", 500),
    ]
    cut = apply_budget(files, 11_500)
    # Order considered: src/auth.py 5000 (5000), src/models.py 4000 (9000), src/util.py 2000 (11000),
    # tests/test_models.py 3000 (cut: 500 left), README.md 1000 (cut), docs/guide.md 500 (11500).
    assert cut.kept == ("src/models.py", "src/auth.py", "src/util.py", "docs/guide.md")
    assert cut.tokens == 11_500
    assert cut.not_reviewed == (
        NotReviewed(
            "README.md",
            "over budget: ~1,000 tokens, 500 left of the 11,500-token per-review budget after riskier files",
        ),
        NotReviewed(
            "tests/test_models.py",
            "over budget: ~3,000 tokens, 500 left of the 11,500-token per-review budget after riskier files",
        ),
    )


def test_apply_budget_everything_fits() -> None:
    files = [("a.py", 10), ("b.md", 20)]
    assert apply_budget(files, 30).kept == ("a.py", "b.md")
    assert apply_budget(files, 30).not_reviewed == ()
    assert apply_budget([], 0).kept == ()


def test_a_huge_risky_file_does_not_starve_the_rest() -> None:
    cut = apply_budget([("src/auth.py", 50_000), ("src/a.py", 100)], 1_000)
    assert cut.kept == ("src/a.py",)
    assert [item.path for item in cut.not_reviewed] == ["src/auth.py"]


@pytest.mark.parametrize("files", [[("a", -1)], [("a", 1), ("a", 2)]])
def test_apply_budget_rejects_bad_input(files: list[tuple[str, int]]) -> None:
    with pytest.raises(ValueError):
        apply_budget(files, 10)
    with pytest.raises(ValueError):
        apply_budget([], -1)


_POOL = [
    f"{d}/{n}.{e}"
    for d in ("src", "tests", "docs", "app/api", "lib")
    for n in ("a", "auth", "b_c")
    for e in ("py", "md")
]
_files = st.lists(st.tuples(st.sampled_from(_POOL), st.integers(0, 5_000)), max_size=15, unique_by=lambda f: f[0])


@given(_files, st.integers(0, 20_000))
def test_apply_budget_properties(files: list[tuple[str, int]], budget: int) -> None:
    paths = [path for path, _ in files]
    cut = apply_budget(files, budget)
    kept = set(cut.kept)
    assert kept | {n.path for n in cut.not_reviewed} == set(paths)  # nothing silently dropped
    assert kept.isdisjoint(n.path for n in cut.not_reviewed)
    assert cut.tokens == sum(t for p, t in files if p in kept) <= budget
    assert all(n.reason.startswith("over budget: ") for n in cut.not_reviewed)
    estimates = dict(files)
    assert all(estimates[n.path] > budget - cut.tokens for n in cut.not_reviewed)  # greedy: nothing cut would fit
    assert apply_budget(list(reversed(files)), budget).kept == tuple(reversed(cut.kept))  # order-independent choice


def test_token_budget_takes_the_lower_cap() -> None:
    assert token_budget(400_000, 5.0, 3.0) == 400_000  # $5 buys 1,666,666 tokens at $3/M
    assert token_budget(4_000_000, 5.0, 3.0) == 1_666_666
    assert token_budget(1_000_000, 1.5, 3.0) == 500_000
    assert token_budget(10_000, 100.0, 3.0) == 10_000
    assert token_budget(10_000, 1.0, 0.0) == 10_000


def test_daily_budget() -> None:
    assert daily_budget(10.0, 5.0, 20.0).allowed
    assert daily_budget(15.0, 5.0, 20.0).allowed  # exactly at the limit
    refused = daily_budget(18.0, 5.0, 20.0)
    assert not refused.allowed
    assert "$18.00 of its $20.00" in refused.message and "00:00 UTC" in refused.message
    assert not daily_budget(25.0, 0.0, 20.0).allowed
