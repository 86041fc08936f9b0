"""@-mention commands: a closed grammar, who may use them, rate limits, and the reply texts (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Protocol

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.config.files import dump_config_yaml
from bot.config.load import EffectiveConfig
from bot.domain import is_bot
from bot.errors import GitHubError

ALLOWED_PERMISSIONS = frozenset({"admin", "maintain", "write"})
MAX_LINE_ECHO = 200
#: A dismissal's reason and a question are kept to this many characters (stored and shown as text only).
MAX_ARGUMENT_CHARS = 2_000

_MENTION = re.compile(r"@(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\[bot\])?(?P<rest>.*)", re.S)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Markdown's line endings only (not str.splitlines' \u2028, \x0c...)


class CommandKind(StrEnum):
    """The closed set of commands; UNKNOWN is anything else after the mention (answered with help)."""

    REVIEW = "review"
    FULL_REVIEW = "full review"
    PAUSE = "pause"
    RESUME = "resume"
    HELP = "help"
    CONFIG = "config"
    DISMISS = "dismiss"  # in one of the bot's threads: never raise that finding again (optionally with a reason)
    QUESTION = "question"  # any other mention in one of the bot's threads: answered there (never typed as a word)
    UNKNOWN = "unknown"


#: Commands that start work (a review job or a pause-state change) rather than only a reply.
ACTION_KINDS = frozenset({CommandKind.REVIEW, CommandKind.FULL_REVIEW, CommandKind.PAUSE, CommandKind.RESUME})
#: Commands that start a paid model run.
REVIEW_KINDS = frozenset({CommandKind.REVIEW, CommandKind.FULL_REVIEW})
#: Commands that only make sense as a reply in one of the bot's finding threads.
THREAD_KINDS = frozenset({CommandKind.DISMISS, CommandKind.QUESTION})
_WORDS = {kind.value: kind for kind in CommandKind if kind not in (CommandKind.UNKNOWN, CommandKind.QUESTION)}


@dataclass(frozen=True, slots=True)
class Command:
    """A command found in a comment: its kind, its 1-based line, the line's text (capped, for logs), and its
    argument: a dismissal's reason, or what follows the mention of an unknown command (plain text, never parsed
    for instructions)."""

    kind: CommandKind
    line: int
    text: str
    argument: str = ""


@dataclass(frozen=True, slots=True)
class CommandCounts:
    """Counts from the store's command log over the last hour, *before* this command was recorded."""

    by_user: int = 0
    accepted_on_pr: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a command (`allowed`: record it as accepted), and what to answer (None: post nothing).

    When allowed and the kind is in ACTION_KINDS, react with eyes and run it; help, config and unknown
    commands only post `reply`. A refused or rate-limited command runs nothing.
    """

    allowed: bool
    reason: str
    reply: str | None


# ---------------------------------------------------------------- parsing


def parse_command(body: str, slug: str) -> Command | None:
    """The first line of `body` that starts with `@<slug>` as GitHub shows it, else None.

    The comment is parsed as CommonMark (markdown-it-py), as GitHub renders it: only top-level paragraph and
    heading lines count, so mentions in code, in quotes (lazy continuation lines included), in lists, in HTML blocks,
    in HTML comments anywhere in a line, and inside `<details>` are ignored.
    """
    slug = slug.strip().lower()
    if not slug or "@" not in body:
        return None
    raw_lines = _LINE_BREAK.split(body)
    details = 0  # depth of open <details> elements: their content is hidden until a reader opens it
    tokens = _markdown().parse(body)
    for index, token in enumerate(tokens):
        if token.type == "html_block":
            details = _details_depth(token, details)
        if token.type != "inline" or token.level != 1 or details or token.map is None:
            continue
        if tokens[index - 1].type not in ("paragraph_open", "heading_open"):
            continue
        for offset, visible in enumerate(_visible_lines(token)):
            number = token.map[0] + offset + 1
            raw = raw_lines[number - 1].strip() if number <= len(raw_lines) else ""
            if not raw.startswith("@"):
                continue
            found = _command_on_line(visible.strip(), slug)
            if found is not None:
                kind, rest = found
                if kind is CommandKind.DISMISS:  # the reason may go on over the comment's following lines
                    rest = "\n".join([rest, *raw_lines[number:]])
                argument = rest.strip()[:MAX_ARGUMENT_CHARS]
                return Command(kind, number, raw[:MAX_LINE_ECHO], argument)
        details = _details_depth(token, details)
    return None


def mentions(body: str, slug: str) -> bool:
    """Whether `body` mentions `@<slug>` where a reader sees it: anywhere in a top-level paragraph or heading,
    not in code, quotes, lists, HTML (comments included) or `<details>` (the same visibility rule as commands)."""
    slug = slug.strip().lower()
    if not slug or "@" not in body:
        return False
    details = 0
    tokens = _markdown().parse(body)
    for index, token in enumerate(tokens):
        if token.type == "html_block":
            details = _details_depth(token, details)
        if token.type != "inline" or token.level != 1 or details:
            continue
        if tokens[index - 1].type not in ("paragraph_open", "heading_open"):
            continue
        if any(_mentioned(visible.lower(), slug) for visible in _visible_lines(token)):
            return True
        details = _details_depth(token, details)
    return False


def _mentioned(line: str, slug: str) -> bool:
    """`@slug` (or `@slug[bot]`) in a lower-cased line, not inside a longer name, e-mail address, team or path."""
    needle = "@" + slug
    start = line.find(needle)
    while start >= 0:
        before = line[start - 1] if start else " "
        end = start + len(needle)
        if line.startswith("[bot]", end):
            end += len("[bot]")
        after = line[end] if end < len(line) else " "
        if not (before.isalnum() or before in "_@/.-") and not (after.isalnum() or after in "_-"):
            return True
        start = line.find(needle, start + 1)
    return False


def thread_command(body: str, slug: str) -> Command | None:
    """In a reply in one of the bot's threads: `dismiss` as parsed, any other command as parsed, and otherwise a
    visible mention anywhere (or an unknown command after one) as a QUESTION whose argument is the whole reply."""
    command = parse_command(body, slug)
    if command is not None and command.kind is not CommandKind.UNKNOWN:
        return command
    if command is None and not mentions(body, slug):
        return None
    line = command.line if command is not None else 1
    text = command.text if command is not None else ""
    return Command(CommandKind.QUESTION, line, text, body.strip()[:MAX_ARGUMENT_CHARS])


@cache
def _markdown() -> MarkdownIt:
    """A CommonMark parser (GitHub's Markdown is a CommonMark superset); HTML allowed, as on GitHub."""
    return MarkdownIt("commonmark")


def _visible_lines(inline: Token) -> list[str]:
    """An inline token's text by source line; code spans, HTML (comments included) and markup become NUL."""
    lines = [""]
    for child in inline.children or ():
        if child.type == "text":
            lines[-1] += child.content
        elif child.type in ("softbreak", "hardbreak"):
            lines.append("")
        else:
            # Hidden or non-text: keeps the line from starting with a mention; its own line breaks still count.
            lines[-1] += "\x00"
            lines.extend("\x00" for _ in range(child.content.count("\n")))
    return lines


def _details_depth(token: Token, depth: int) -> int:
    """`depth` after the `<details>` tags opened and closed in an HTML token (or an inline token's HTML children)."""
    parts = [token] if token.type in ("html_block", "html_inline") else list(token.children or ())
    for part in parts:
        if part.type in ("html_block", "html_inline"):
            low = part.content.lower()
            depth = max(0, depth + low.count("<details") - low.count("</details"))
    return depth


def _command_on_line(line: str, slug: str) -> tuple[CommandKind, str] | None:
    mention = _MENTION.fullmatch(line)
    if mention is None or mention["name"].lower() != slug:
        return None
    rest = mention["rest"]
    if rest[:1] in (":", ","):
        rest = rest[1:]
    elif rest and not rest[0].isspace():
        return None  # `@slug-other`, `@slug/team`, `@slug's`: not a command to this App
    words = " ".join(rest.split()).lower()
    kind = _WORDS.get(words)
    if kind is not None:
        return kind, ""
    first, _, after = rest.strip().partition(" ")
    if first.lower().rstrip(":,.") == CommandKind.DISMISS.value:
        return CommandKind.DISMISS, after
    return CommandKind.UNKNOWN, rest


# ---------------------------------------------------------------- who may, how often


class PermissionReader(Protocol):
    """What the permission lookup needs from GitHub (`RepoClient` of the pull request's repository)."""

    async def collaborator_permission(self, user: str) -> str:
        """`GET /repos/{o}/{r}/collaborators/{user}/permission`: admin, maintain, write, triage, read or none."""
        ...


async def lookup_permission(reader: PermissionReader, user: str) -> str | None:
    """The user's permission, or None when GitHub answers with an error (commands then fail closed)."""
    try:
        return await reader.collaborator_permission(user)
    except GitHubError:
        return None


def is_writer(permission: str | None) -> bool:
    """Write, maintain or admin permission on the repository."""
    return isinstance(permission, str) and permission.strip().lower() in ALLOWED_PERMISSIONS


def may_command(permission: str | None, commenter_login: str, pr_author: str, config: EffectiveConfig) -> bool:
    """Write, maintain or admin; the PR's author too when configured; anything else (or None) fails closed."""
    if is_writer(permission):
        return True
    is_author = bool(pr_author) and commenter_login.strip().lower() == pr_author.strip().lower()
    return is_author and config.config.commands.allow_pr_author


def decide(
    command: Command,
    *,
    commenter_login: str,
    commenter_type: str,
    permission: str | None,
    pr_author: str,
    app_slug: str,
    config: EffectiveConfig,
    counts: CommandCounts,
    author_may_review: bool = True,
) -> Decision:
    """Bots: silence; then the per-user limit, permission, the per-PR limit, and the command itself.

    `author_may_review`: the trust rule for automatic reviews (`bot.trust`) passed for this PR's author; a PR
    author obeyed only through `commands.allow_pr_author` cannot start a paid review when it did not. In a finding's
    thread, `dismiss` is for writers only (a PR's author could otherwise clear the findings gating the merge), and
    a question is answered for writers and for the PR's author when that rule passed for them.
    """
    if is_bot(commenter_login, commenter_type, app_slug):
        return Decision(False, "commenter is a bot", None)
    limits = config.config.commands
    if command.kind is CommandKind.QUESTION and not config.config.threads.answer_questions:
        return Decision(False, "thread answers are off", None)
    if counts.by_user >= limits.max_per_user_per_hour:
        return _limited("user", counts.by_user, limits.max_per_user_per_hour, app_slug)
    if command.kind in THREAD_KINDS:
        refusal = _thread_refusal(command.kind, permission, commenter_login, pr_author, author_may_review, app_slug)
        if refusal is not None:
            return refusal
    elif not may_command(permission, commenter_login, pr_author, config):
        return Decision(False, f"permission {permission or 'unknown'}", refused_text(app_slug, config))
    if command.kind in REVIEW_KINDS and not is_writer(permission) and not author_may_review:
        return Decision(False, "untrusted pull request author", untrusted_author_text(app_slug))
    if counts.accepted_on_pr >= limits.max_per_pr_per_hour:
        return _limited("pull request", counts.accepted_on_pr, limits.max_per_pr_per_hour, app_slug)
    if command.kind is CommandKind.UNKNOWN:
        return Decision(True, "unknown command: answered with help", help_text(app_slug, config, unknown=True))
    if command.kind is CommandKind.HELP:
        return Decision(True, "help", help_text(app_slug, config))
    if command.kind is CommandKind.CONFIG:
        return Decision(True, "config", config_text(config))
    if not config.config.enabled and command.kind in (CommandKind.REVIEW, CommandKind.FULL_REVIEW):
        return Decision(False, "disabled by configuration", disabled_text())
    return Decision(True, command.kind.value, None)


def _thread_refusal(kind: CommandKind, permission: str | None, login: str, pr_author: str, author_trusted: bool,
                    app_slug: str) -> Decision | None:
    """None when the commenter may dismiss (writers) or ask (writers, the trusted PR author); else the refusal."""
    if is_writer(permission):
        return None
    is_author = bool(pr_author) and login.strip().lower() == pr_author.strip().lower()
    if kind is CommandKind.QUESTION and is_author and author_trusted:
        return None
    return Decision(False, f"{kind.value}: permission {permission or 'unknown'}", thread_refused_text(kind, app_slug))


def _limited(scope: str, count: int, limit: int, app_slug: str) -> Decision:
    # One reply when the limit is first reached; silence for the rest of the hour.
    reply = rate_limited_text(scope, limit, app_slug) if count == limit else None
    return Decision(False, f"rate limited ({scope}: {count} >= {limit} per hour)", reply)


# ---------------------------------------------------------------- reply texts


def help_text(app_slug: str, config: EffectiveConfig, unknown: bool = False) -> str:
    """The command list and the effective configuration's main switches."""
    c = config.config
    intro = "I did not recognise that command. " if unknown else ""
    lines = [f"{intro}Commands (one per comment, no options or arguments):", ""]
    lines += [f"- `@{app_slug} {kind.value}`: {text}" for kind, text in _DESCRIPTIONS.items()]
    threads = c.threads
    lines += [
        "",
        "In the thread of one of my findings (reply to it):",
        "",
        f"- `@{app_slug} dismiss` or `@{app_slug} dismiss <reason>`: never raise this finding again on this pull "
        "request; with a reason, "
        + ("not in this repository's later pull requests either" if threads.remember_dismissals
           else "kept as a note (remembering dismissals across pull requests is off)")
        + "; people with write access only"
        + (". A 👎 reaction on the finding from them does the same." if threads.dismiss_by_reaction else "."),
        f"- any question that mentions `@{app_slug}` (`@{app_slug} why?`, `@{app_slug} how would you fix this?`): "
        + ("answered in the thread, from people with write access and the pull request's trusted author"
           if threads.answer_questions else "off for this repository (`threads.answer_questions: false`)")
        + ".",
        ("- when a push changes a finding's lines, the next review re-checks it; when it is fixed I reply in its "
         "thread and resolve it." if threads.resolve_fixed
         else "- re-checking findings after a push is off (`threads.resolve_fixed: false`)."),
        "",
        f"Who may use them: {_who(config)}.",
        "",
        "Current configuration:",
        f"- reviews {'enabled' if c.enabled else 'disabled'}; drafts {'reviewed' if c.review_drafts else 'skipped'}; "
        f"automatic on open: {_yes(c.auto_review.on_open)}, on push: {_yes(c.auto_review.on_push)}",
        f"- model `{config.model}`, effort `{config.effort or 'default'}`, language {c.language}",
        f"- inline comments from severity `{c.min_inline_severity.value}`, at most {c.max_inline_comments}; "
        f"check gate `{c.gate_severity}`",
        f"- configuration read from: {', '.join(f'`{s}`' for s in config.sources)}",
    ]
    return "\n".join(lines)


def refused_text(app_slug: str, config: EffectiveConfig) -> str:
    """The one short reply to a refused command."""
    return f"Sorry, `@{app_slug}` commands can only be used by {_who(config)}."


def thread_refused_text(kind: CommandKind, app_slug: str) -> str:
    """The one reply (per thread) to a dismissal or a question from someone who may not make it."""
    if kind is CommandKind.DISMISS:
        return f"Sorry, only people with write access to this repository can dismiss a `@{app_slug}` finding."
    return (f"Sorry, `@{app_slug}` answers questions in its threads from people with write access and from the "
            "pull request's author when their pull requests are reviewed automatically.")


def not_in_thread_text(app_slug: str) -> str:
    """The reply to `dismiss` outside one of the bot's finding threads."""
    return f"`@{app_slug} dismiss` works as a reply in the thread of one of my findings."


def untrusted_author_text(app_slug: str) -> str:
    """The reply to a PR author whose own pull request is not reviewed without a maintainer."""
    return (f"Reviews of this pull request are started by a maintainer: someone with write access can comment "
            f"`@{app_slug} review`.")


def rate_limited_text(scope: str, limit: int, app_slug: str) -> str:
    """The one reply when a rate limit is reached; later commands in the hour get none."""
    return (
        f"Command limit reached: at most {limit} `@{app_slug}` commands per {scope} per hour. "
        "Further commands are ignored until the hour has passed."
    )


def config_text(config: EffectiveConfig) -> str:
    """The effective configuration as a YAML code block (fenced so nothing in it renders or pings)."""
    body = dump_config_yaml(config.config)
    body += f"# model in effect: {config.model}\n# effort in effect: {config.effort or 'default'}\n"
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    sources = ", ".join(f"`{s}`" for s in config.sources)
    return f"Effective configuration (from {sources}):\n\n{fence}yaml\n{body}{fence}"


def disabled_text() -> str:
    """The reply to `review` when the configuration disables the bot on this repository."""
    return "Reviews are disabled for this repository (`enabled: false` in `.github/senior-review.yml`)."


_DESCRIPTIONS = {
    CommandKind.REVIEW: "review the changes since the last review now (even if automatic reviews are off)",
    CommandKind.FULL_REVIEW: "review the whole pull request again (findings already made are not repeated)",
    CommandKind.PAUSE: "stop automatic reviews on this pull request (commands keep working)",
    CommandKind.RESUME: "restart automatic reviews on this pull request",
    CommandKind.HELP: "show this message",
    CommandKind.CONFIG: "show the effective configuration",
}


def _who(config: EffectiveConfig) -> str:
    people = "people with write, maintain or admin access to this repository"
    return people + (" and the pull request's author" if config.config.commands.allow_pr_author else "")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
