"""What the App asks GitHub for: its permissions and webhook events (the manifest and the README list these)."""

from __future__ import annotations

from collections.abc import Mapping

APP_PERMISSIONS: Mapping[str, str] = {
    "pull_requests": "write",
    "contents": "read",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
APP_EVENTS: tuple[str, ...] = (
    "pull_request", "issue_comment", "pull_request_review_comment",
    # Resolving a finding's thread tells the bot never to raise that finding again.
    "pull_request_review_thread",
)
