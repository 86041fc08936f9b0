"""Answering a question in one of the bot's finding threads: gather the finding, the code around it and the thread,
ask the model within the budgets, and post its sanitised answer in the thread. No action ever follows from it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.analysis import estimated_cost
from bot.budget import daily_caps
from bot.config.load import EffectiveConfig
from bot.context import context_ranges
from bot.domain import PullRequest
from bot.errors import GitHubError
from bot.github.context import read_context
from bot.github.payloads import ReviewComment
from bot.github.repo import RepoClient
from bot.invisible import mark_invisible, strip_html_comments
from bot.model.thread import ThreadAnswerer
from bot.prompts import shown_path, thread_prompt
from bot.sanitize import cap, sanitize_markdown
from bot.spending import spend_gate, todays_caps
from bot.store.base import Store

log = logging.getLogger(__name__)

#: What an answer may cost before it is made (a few thousand tokens in, a short answer out), for the daily caps.
ESTIMATED_TOKENS = 8_000
ANSWER_MAX_CHARS = 6_000
CODE_MAX_LINES = 160
THREAD_MAX_COMMENTS = 12
COMMENT_MAX_CHARS = 1_500
NO_ANSWER = "Sorry, I could not answer this one; a person with write access can dismiss the finding if it is wrong."


@dataclass(frozen=True, slots=True)
class Question:
    """The reply that asked: its comment id, author and text."""

    comment_id: int
    author: str
    body: str


def _without_markers(body: str) -> str:
    return "\n".join(line for line in body.splitlines() if not line.startswith("<!-- senior-review:")).strip()


def numbered_code(text: str, path: str, start: int, end: int) -> str:
    """The code around lines `start`-`end` of a file at the head, numbered, the cited lines marked with `>`."""
    lines = text.splitlines()
    if not lines or end < 1:
        return ""
    scopes = context_ranges(text, [(start, end)], path) or []
    lo, hi = (scopes[0].start, scopes[0].end) if scopes else (max(1, start - 20), min(len(lines), end + 20))
    if hi - lo + 1 > CODE_MAX_LINES:  # keep the cited lines in the middle of the window
        middle = (start + end) // 2
        lo, hi = max(1, middle - CODE_MAX_LINES // 2), min(len(lines), middle + CODE_MAX_LINES // 2)
    width = len(str(hi))
    out = [f"{'>' if start <= n <= end else ' '} {n:>{width}}  {lines[n - 1]}" for n in range(lo, hi + 1)]
    return mark_invisible("\n".join(out))


def thread_so_far(comments: Sequence[ReviewComment], root: ReviewComment, question_id: int) -> str:
    """The thread's replies before the question (the finding itself is shown apart), oldest first, capped."""
    replies = sorted((c for c in comments if c.in_reply_to_id == root.id and c.id < question_id), key=lambda c: c.id)
    lines = []
    for c in replies[-THREAD_MAX_COMMENTS:]:
        who = f"{c.author} (you)" if c.is_own else c.author
        body = strip_html_comments(_without_markers(c.body))[:COMMENT_MAX_CHARS]  # hidden from readers: not shown
        lines.append(f"- {who}: " + body.replace("\n", "\n  "))
    return "\n".join(lines)


async def _code(gh: RepoClient, pr: PullRequest, root: ReviewComment) -> str:
    line = root.line
    if line is None:
        return ""
    try:
        view = await read_context(gh, pr.head_sha, [root.path], [])
    except GitHubError as exc:
        log.warning("code around the finding not read: %s", exc)
        return ""
    text = view.texts.get(root.path) if view is not None else None
    return numbered_code(text, root.path, root.start_line or line, line) if text else ""


async def answer_in_thread(
    *, store: Store, settings: Any, model_client: Any, gh: RepoClient, pr: PullRequest, effective: EffectiveConfig,
    root: ReviewComment, question: Question, job_id: int,
) -> str:
    """Answer `question` in the thread of `root` (the App's finding); returns what was posted."""
    caps = await todays_caps(store, pr, effective.config.budgets)
    refusal = daily_caps(caps, estimated_cost(ESTIMATED_TOKENS, effective.model))
    if not refusal.allowed:
        text = f"I can't answer now: the {refusal.scope}'s daily budget for reviews is used up."
        await gh.reply_to_review_comment(pr.number, root.id, text)
        return text
    comments = await gh.list_review_comments(pr.number)
    where = f"{shown_path(root.path)}, line {root.line}" if root.line else f"{shown_path(root.path)} (outdated)"
    prompt = thread_prompt(
        repo=pr.full_name, title=pr.title, where=where, finding=_without_markers(root.body),
        code=await _code(gh, pr, root), thread=thread_so_far(comments, root, question.comment_id),
        asker=question.author, question=question.body, language=effective.config.language,
    )
    answerer = ThreadAnswerer(model_client, effective.model, effective.effort,
                              gate=spend_gate(store, pr, job_id, effective, caps))
    result = await answerer.answer(prompt.text)
    repo_url = f"{settings.web_url}/{pr.full_name}"
    if result.text is None:
        log.info("question in the thread of comment %s not answered: %s", root.id, result.error)
        text = NO_ANSWER
    else:
        text = cap(result.text, ANSWER_MAX_CHARS, lambda t: sanitize_markdown(t, repo_url))
    await gh.reply_to_review_comment(pr.number, root.id, text)
    return text
