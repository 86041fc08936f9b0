"""`RepoClient`: every GitHub operation on one repository, as the App's installation or as a token."""

from __future__ import annotations

from bot.github.conversation import Conversation
from bot.github.reviews import ReviewPosting


class RepoClient(ReviewPosting, Conversation):
    """GitHub operations on one repository: reads (`bot.github.pulls`), the review (`bot.github.reviews`), the
    rest of what the bot writes (`bot.github.conversation`), over `bot.github.session`'s plumbing."""
