"""Trust tiers: whose pull requests may start a paid review without a maintainer asking.

`automatic_review_allowed` is the one decision every automatic entry point takes (webhook-triggered review jobs,
catch-up of open pull requests) and the rule a PR author's own `review` command follows. The pure part
(`author_trusted`) needs no I/O; the decision adds the permission lookup and a maintainer's earlier approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.commands import ALLOWED_PERMISSIONS, PermissionReader, lookup_permission
from bot.config.schema import RepoConfig
from bot.domain import PullRequest

# GitHub's author_association values that mean the author belongs to the repository or its organization.
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class TrustDecision:
    """Whether an automatic review may run, and why (for logs and the check run)."""

    allowed: bool
    reason: str


class Approvals(Protocol):
    """Whether a maintainer already started a review of this pull request with a command (the store)."""

    async def has_command_review(self, repo: str, pr: int) -> bool:
        """True when a review of `repo#pr` was started by a command."""
        ...


def author_trusted(association: str, permission: str | None, trust: str) -> TrustDecision:
    """The pure rule: `everyone`, a trusted association, or write/maintain/admin permission."""
    if trust == EVERYONE:
        return TrustDecision(True, "configuration trusts everyone (auto_review.trust: everyone)")
    if association.upper() in TRUSTED_ASSOCIATIONS:
        return TrustDecision(True, f"author association {association.upper()}")
    if permission is not None and permission.lower() in ALLOWED_PERMISSIONS:
        return TrustDecision(True, f"author has {permission.lower()} permission")
    return TrustDecision(False, f"author association {association.upper() or 'unknown'}, "
                                f"permission {permission or 'unknown'}")


async def automatic_review_allowed(
    pr: PullRequest, config: RepoConfig, permissions: PermissionReader, approvals: Approvals
) -> TrustDecision:
    """May this pull request be reviewed without a maintainer asking? (Permission looked up only when needed.)"""
    trust = config.auto_review.trust
    cheap = author_trusted(pr.author_association, None, trust)
    if cheap.allowed:
        return cheap
    permission = await lookup_permission(permissions, pr.author) if pr.author else None
    verdict = author_trusted(pr.author_association, permission, trust)
    if verdict.allowed:
        return verdict
    if config.auto_review.approval_carries_over and await approvals.has_command_review(pr.full_name, pr.number):
        return TrustDecision(True, "a maintainer approved reviews of this pull request with a command")
    return TrustDecision(False, f"untrusted author ({verdict.reason})")


def awaiting_maintainer_text(app_slug: str) -> tuple[str, str]:
    """The neutral check run's title and summary for a pull request that waits for a maintainer."""
    title = "Waiting for a maintainer"
    summary = (
        "This pull request's author does not have write access to this repository, so it is not reviewed "
        "automatically (every review is a paid model run). A maintainer can start a review by commenting "
        f"`@{app_slug} review`."
    )
    return title, summary
