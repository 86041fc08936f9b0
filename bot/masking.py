"""Secrets masked in everything the bot posts: detect-secrets' rules where they cover a format, ours for the rest.

Every pattern runs on RE2 (`bot.linear`), so masking is linear in the text. Matching happens on a normalised copy
(NFKC, hidden characters such as zero-width spaces removed) mapped back to the original text, so a token split by a
U+200B or spelled in full-width letters is still found, while text around secrets is left exactly as written.
A masked token keeps a short recognisable prefix (`ghp_************`); a captured value (the password of a URL,
the value of `password = ...`) is replaced whole.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from bot.invisible import has_hidden, is_hidden
from bot.linear import linear

MASK = "*" * 12

def library_plugins() -> tuple[type, ...]:
    """The detect-secrets plugins whose rules we apply (imported on first use: the package is slow to import)."""
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    return (
        AWSKeyDetector, AzureStorageKeyDetector, BasicAuthDetector, DiscordBotTokenDetector, GitHubTokenDetector,
        GitLabTokenDetector, MailchimpDetector, NpmDetector, OpenAIDetector, PypiTokenDetector, SendGridDetector,
        SlackDetector, SquareOAuthDetector, StripeDetector, TelegramBotTokenDetector, TwilioKeyDetector,
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """One secret pattern: `keep` characters of the match survive; or, with `group`, only that group is masked."""

    name: str
    pattern: Any  # an RE2 expression
    keep: int = 4
    group: int | None = None  # RE2 matches take group numbers only


# Our own rules: formats detect-secrets lacks or matches too narrowly (fixed lengths, required quotes or context).
_OWN: tuple[tuple[str, str, int, int | str | None], ...] = (
    ("AWS access key id", r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16,}", 4, None),
    ("AWS secret access key",
     r"(?i)aws.{0,24}?(?:secret|key).{0,24}?[=:][ \t]*[\"']?(?P<v>[0-9A-Za-z/+]{40})(?:[^0-9A-Za-z/+=]|$)", 0, "v"),
    ("GitHub fine-grained token", r"github_pat_[A-Za-z0-9_]{20,}", 11, None),
    ("GitHub token", r"gh[pousr]_[A-Za-z0-9_]{30,}", 4, None),
    ("Slack token", r"xox[abposre]-[A-Za-z0-9-]{10,}", 5, None),
    ("Slack app token", r"xapp-[A-Za-z0-9-]{10,}", 5, None),
    ("Slack webhook", r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9_/]{8,})", 0, "v"),
    ("Anthropic key", r"sk-ant-[A-Za-z0-9_-]{16,}", 7, None),
    ("OpenAI-style key", r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}", 3, None),
    ("Stripe key", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", 8, None),
    ("Google API key", r"AIza[0-9A-Za-z_-]{35,}", 4, None),
    ("Google OAuth token", r"ya29\.[0-9A-Za-z_-]{20,}", 5, None),
    ("GitLab token", r"\bgl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[0-9A-Za-z_-]{20,}", 6, None),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36,}", 4, None),
    ("PyPI token", r"\bpypi-[A-Za-z0-9_-]{50,}", 5, None),
    ("SendGrid key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", 3, None),
    ("Azure storage key", r"(?i)(?:AccountKey|SharedAccessKey)=(?P<v>[A-Za-z0-9+/=]{20,})", 0, "v"),
    ("JSON web token", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 3, None),
    ("Bearer token", r"(?i)\bbearer[ \t]+(?P<v>[A-Za-z0-9._~+/-]{16,}=*)", 0, "v"),
    ("URL password", r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s/?#@:]{1,256}:(?P<v>[^\s/?#@]{1,256})@", 0, "v"),
)

# `password = "..."`-style assignments; the value is checked by `_real_value` (placeholders are not masked).
_ASSIGNMENT = (
    r"(?i)(?P<key>[A-Za-z0-9_.-]{0,64}(?:password|passwd|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|credential|client[_-]?secret)[A-Za-z0-9_.-]{0,64})"
    r"(?P<sep>[\"']?[ \t]*(?::=|=>|[:=])[ \t]*)"
    r"(?:\"(?P<dq>[^\"\n]{8,200})\"|'(?P<sq>[^'\n]{8,200})'|(?P<uv>[^\s\"'`,;(){}\[\]<>]{8,}))"
)
_UNQUOTED_END = "\"'`(){}[]<>"  # an unquoted value followed by one of these is code, not a secret
_IDENTIFIER_CHAIN = linear(r"[A-Za-z_][A-Za-z_.]*")
_PLACEHOLDER = linear(r"[\\*]+|\$\{?[\w.]+\}?|%\(\w+\)s|\{\{.*\}\}|<[^>]*>")

_KEY_HEAD = r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40}?)PRIVATE KEY(?P<blk> BLOCK)?-----"
_KEY_STOP = r"(?m)(?P<end>-----END [A-Z0-9 ]{0,40}?PRIVATE KEY(?: BLOCK)?-----)|(?P<fence>^[ \t]*(?:`{3,}|~{3,}))"


def _library_expression(pattern: re.Pattern[str]) -> str:
    """A detect-secrets pattern in RE2 syntax: flags inlined, a trailing `{a,b}(?!\\w)` made `{a,}` (no lookahead)."""
    text = pattern.pattern
    if pattern.flags & re.VERBOSE:
        text = re.sub(r"(?<!\\)\s+", "", text)
    text = re.sub(r"\{(\d+)(?:,\d*)?\}\(\?!\\w\)", r"{\1,}", text)
    return ("(?i)" if pattern.flags & re.IGNORECASE else "") + text


@cache
def rules() -> tuple[Rule, ...]:
    """Every rule, ours first (they keep known prefixes), then detect-secrets'."""
    own = []
    for name, expr, keep, group in _OWN:
        compiled = linear(expr)
        index = compiled.groupindex[group] if isinstance(group, str) else group
        own.append(Rule(name, compiled, keep, index))
    library: list[Rule] = []
    for plugin in library_plugins():
        for pattern in plugin.denylist:  # type: ignore[attr-defined]
            compiled = linear(_library_expression(pattern))
            group = 1 if compiled.groups else None
            library.append(Rule(f"detect-secrets {plugin.__name__}", compiled, 4, group))
    return (*own, *library)


@cache
def _assignment() -> Any:
    return linear(_ASSIGNMENT)


@cache
def _key_patterns() -> tuple[Any, Any]:
    return linear(_KEY_HEAD), linear(_KEY_STOP)


# ---------------------------------------------------------------- normalised view


@dataclass(frozen=True, slots=True)
class _View:
    """The text as matched (NFKC, hidden characters removed) and, per character of it, its origin in the original."""

    text: str
    origin: tuple[int, ...] | None  # None: identical to the original

    def span(self, start: int, end: int, original_len: int) -> tuple[int, int]:
        """The original span of the view's [start, end)."""
        if self.origin is None:
            return start, end
        o_start = self.origin[start] if start < len(self.origin) else original_len
        o_end = self.origin[end - 1] + 1 if end > start else o_start
        return o_start, o_end


@lru_cache(maxsize=4096)
def _nfkc(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


def _view(text: str) -> _View:
    if text.isascii() or (not has_hidden(text) and unicodedata.is_normalized("NFKC", text)):
        return _View(text, None)
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            chars.append(ch)
            origin.append(i)
            continue
        if is_hidden(ch):
            continue
        norm = _nfkc(ch)
        chars.append(norm)
        origin.extend([i] * len(norm))
    return _View("".join(chars), tuple(origin))


# ---------------------------------------------------------------- masking


def _already_masked(value: str) -> bool:
    return bool(value) and not value.strip("*\\")


def _replacements(view: str) -> Iterable[list[tuple[int, int, str]]]:
    """Per rule, in priority order: (start, end, replacement) spans in the view."""
    head, stop = _key_patterns()
    keys: list[tuple[int, int, str]] = []
    # One pass for heads and one for stops, merged here: RE2's Python binding encodes the whole text on every
    # call, so searching again from each head would be quadratic.
    stops = [(m.start(), m.end(), m.group(1) is not None) for m in stop.finditer(view)]
    at, consumed = 0, 0
    for m in head.finditer(view):
        if m.start() < consumed:
            continue
        while at < len(stops) and stops[at][0] < m.end():
            at += 1
        closed = at < len(stops) and stops[at][2]
        end = len(view) if at == len(stops) else (stops[at][1] if closed else stops[at][0])
        label, blk = m.group(1), m.group(2) or ""
        tail = "" if closed or end == len(view) else "\n"
        armour = f"-----BEGIN {label}PRIVATE KEY{blk}-----\n{MASK}\n-----END {label}PRIVATE KEY{blk}-----{tail}"
        keys.append((m.start(), end, armour))
        consumed = max(end, m.end())
    yield keys
    for rule in rules():
        yield [span for m in rule.pattern.finditer(view) for span in _rule_replacement(rule, m)]
    yield [span for m in _assignment().finditer(view) for span in _assignment_replacement(m, view)]


def _rule_replacement(rule: Rule, m: Any) -> Iterable[tuple[int, int, str]]:
    if rule.group is not None and m.start(rule.group) > m.start() and m.group(rule.group):
        value = m.group(rule.group)
        if not _already_masked(value):
            yield m.start(rule.group), m.end(rule.group), MASK
        return
    token = m.group(0)
    keep = rule.keep
    if rule.group is not None and m.start(rule.group) == m.start():  # a prefix group: keep it and its separator
        keep = m.end(rule.group) - m.start() + 1
    if len(token) > keep and not _already_masked(token[keep:]):
        yield m.start() + keep, m.end(), MASK


def _assignment_replacement(m: Any, view: str) -> Iterable[tuple[int, int, str]]:
    index = _assignment().groupindex
    for name in ("dq", "sq"):
        value = m.group(index[name])
        if value is not None:
            if _real_value(value):
                yield m.start(index[name]), m.end(index[name]), MASK
            return
    uv = index["uv"]
    value = m.group(uv)
    following = view[m.end() : m.end() + 1]
    if following and following in _UNQUOTED_END:
        return
    if _real_value(value) and _IDENTIFIER_CHAIN.fullmatch(value) is None:
        yield m.start(uv), m.end(uv), MASK


def _real_value(value: str) -> bool:
    """Whether an assignment's value looks like a real secret (not a variable, placeholder, repeat or mask)."""
    if _already_masked(value) or len(set(value)) == 1:
        return False
    return _PLACEHOLDER.fullmatch(value) is None


def _accepted(groups: Iterable[list[tuple[int, int, str]]]) -> list[tuple[int, int, str]]:
    """The spans of every rule that overlap no span of an earlier rule (earlier rules win), sorted."""
    taken: list[tuple[int, int, str]] = []
    for spans in groups:
        if not spans:
            continue
        starts = [span[0] for span in taken]
        for span in spans:
            at = bisect.bisect_right(starts, span[0])
            before = taken[at - 1] if at else None
            after = taken[at] if at < len(taken) else None
            if (before is None or before[1] <= span[0]) and (after is None or span[1] <= after[0]):
                taken.insert(at, span)
                starts.insert(at, span[0])
    return taken


def mask_secrets(text: str) -> str:
    """Mask credential-shaped strings (tokens, keys, URL passwords, `password=...`, private keys), keeping a prefix."""
    view = _view(text)
    out: list[str] = []
    pos = 0  # in the original text
    for start, end, replacement in _accepted(_replacements(view.text)):
        o_start, o_end = view.span(start, end, len(text))
        out.append(text[pos:o_start])
        out.append(replacement)
        pos = o_end
    out.append(text[pos:])
    return "".join(out)


__all__ = ["MASK", "Rule", "library_plugins", "mask_secrets", "rules"]
