"""Make model-written text inert before it reaches GitHub: no pings, images, HTML, foreign links, commands or secrets.

Design (why the output is safe however GitHub parses it):

* Prose is processed line by line. Only fenced code blocks opened at column 0 and code spans that open and close
  on the same line are treated as code; every other backtick in prose is backslash-escaped, every `<` becomes
  `\\<`, every `[`, `]` and `|` is escaped, and `~~~` runs are escaped. So GitHub cannot see a fence, a
  multi-line code span, an HTML block or tag, an autolink, a reference link, a table or an image that we did not
  see, and the code regions we leave untouched are exactly the ones GitHub renders as code.
* `@login` and `@org/team` outside code become code spans (no ping). An `@` preceded by an ASCII letter or digit is
  part of an e-mail address (or similar) and is left alone: GitHub does not treat it as a mention, and a `mailto:`
  autolink loads nothing and notifies no one. `_` is not treated as a word character because `_emphasis_@x`
  renders as a mention.
* Markdown links keep their text; the destination survives only for the repository's own pages
  (`repo_url` + `/...`). Bare URLs to anything else are put in code spans (visible, not clickable); images are
  replaced by `(image removed)`.
* Cross-repository references (`owner/repo#12`) become code spans: they would add a "mentioned" event to another
  repository's issue. Same-repository `#12` references are left (they link to the repository's own pages).
* Line-leading `/command`s get a backslash (`\\/merge` renders as `/merge` but no bot reads it as a command);
  `bors r+`, `atlantis apply` and similar get their bot word put in a code span; `@dependabot` and `@mergifyio`
  are mentions and handled as such. In fenced code in the body a zero-width space goes before a line-leading
  `/word`; a suggestion containing such a line is withheld instead (changing it would change the code).
* Secrets are masked everywhere (prose, code, suggestions), keeping a short recognisable prefix.
* HTML-comment markers of our own (`<!-- senior-review...`) are defused in code too, so model text cannot forge them.

`sanitize_markdown` is idempotent (it iterates its single pass to a fixpoint).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from bot.domain import Finding
from bot.links import repo_link
from bot.masking import mask_secrets

TITLE_MAX = 200
BODY_MAX = 16_000
SUGGESTION_MAX = 16_000
COMMENT_MAX = 65_536
TRUNCATED = "(truncated)"
ZWSP = "\u200b"

_REPO_URL_SAFE = re.compile(r"[A-Za-z0-9\-._~:/?#=&%+]*")
# Any Unicode space (not a newline) or `>` may precede a line's `/command`: other bots trim them all.
_LEAD = r"(?:[^\S\n]|>)*"
_BOT_WORDS = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(?P<word>bors|atlantis|digger)"
    r"(?=\s+(?:r[+\-=]|try|delegate|merge|retry|cancel|ping|p=|apply|plan|unlock|import|approve_policies|state))"
)

# --- small helpers ------------------------------------------------------------------------------------------------


def fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run in `text` (at least three)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_span(text: str) -> str:
    """`text` as one inline code span, whatever backticks it contains (newlines become spaces)."""
    text = text.replace("\r", " ").replace("\n", " ")
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _defuse_markers(text: str) -> str:
    """Break any `<!-- senior-review` so model text can never forge one of our hidden markers."""
    return re.sub(r"(?i)<!--(?=\s*senior-review)", "<!" + ZWSP + "--", text)


_CODE_COMMAND = re.compile(r"^(" + _LEAD + r")(?=/[A-Za-z])", re.M)


def _defuse_bot_words(text: str) -> str:
    """A zero-width space inside `bors`/`atlantis` when a command follows, so those bots ignore it."""
    return _BOT_WORDS.sub(lambda m: m.group("word")[0] + ZWSP + m.group("word")[1:], text)


def _defuse_code(text: str) -> str:
    """Make code lines inert for other bots (zero-width space before `/cmd` and inside `bors r+`) and markers."""
    text = _CODE_COMMAND.sub(lambda m: m.group(1) + ZWSP, text)
    return _defuse_markers(_defuse_bot_words(text))


# --- prose --------------------------------------------------------------------------------------------------------

_PROSE = re.compile(
    r"(?P<image>!\[[^\[\]\n]*\]\([^()\s]*(?:[ \t]+\"[^\"\n]*\")?\)|<(?:img|image|svg|picture|video)\b[^>\n]*>?)"
    r"|(?P<link>\[(?P<text>[^\[\]\n]*)\]\((?P<url>[^()\s<>`]*)(?:[ \t]+\"[^\"\n]*\")?\))"
    r"|(?P<url2>(?:[A-Za-z][A-Za-z0-9+.-]{1,20}://|www\.)[^\s<>`\\]*)"
    r"|(?P<xref>(?<![A-Za-z0-9_./-])[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+#[0-9]+)"
    r"|(?P<mention>(?<![A-Za-z0-9])\\?@(?P<login>[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)?"
    r"(?:@[A-Za-z0-9_.@/-]*)?))"
    r"|" + _BOT_WORDS.pattern.replace("(?i)", "").replace("(?P<word>", "(?P<bot>") +
    r"|(?P<esc>\\[!-/:-@\[-`{-~])"
    r"|(?P<entity>&(?:\#[0-9]{1,8}|\#[xX][0-9A-Fa-f]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});)"
    r"|(?P<mask>\*{12,})"
    r"|(?P<tilde>~{3,})"
    r"|(?P<special>[<\[\]|])",
    re.I,
)
_TRAILING_CHARS = ".,:;!?'\")]*_~"


def _repo_url(url: str, repo_url: str) -> str | None:
    """`url` normalised when it is one of the repository's own pages, spelled with harmless characters; else None."""
    if _REPO_URL_SAFE.fullmatch(url) is None:
        return None
    return repo_link(url, repo_url)


def _prose_token(m: re.Match[str], repo_url: str) -> str:
    """The inert replacement of one prose construct found by `_PROSE`."""
    kind = m.lastgroup
    text = m.group(0)
    if m.group("image") is not None:
        return "(image removed)"
    if m.group("link") is not None:
        label = _prose_segment(m.group("text"), repo_url)
        target = _repo_url(m.group("url"), repo_url)
        if target is not None and label:
            return f"[{label}]({target})"
        return label
    if m.group("url2") is not None:
        url = text
        # rstrip, not a `[...]+$` search: that is quadratic on a long run of punctuation (ReDoS).
        kept = url.rstrip(_TRAILING_CHARS)
        rest = ""
        if len(kept) < len(url):
            url, rest = kept, url[len(kept) :]
            rest = _prose_segment(rest, repo_url)
        target = _repo_url(url, repo_url)
        if target is not None:
            return target + rest
        return code_span(url) + rest
    if m.group("xref") is not None:
        return code_span(text)
    if m.group("mention") is not None:
        return code_span("@" + m.group("login"))
    if m.group("bot") is not None:
        return code_span(m.group("bot"))
    if m.group("entity") is not None:
        return "\\" + text
    if m.group("mask") is not None:
        return "\\*" * len(text)
    if m.group("tilde") is not None:
        return "\\~" * len(text)
    if kind == "special":
        return "\\" + text
    return text  # esc: an existing backslash escape stays as it is


def _prose_segment(text: str, repo_url: str) -> str:
    """Sanitise prose that contains no code span."""
    parts: list[str] = []
    pos = 0
    for m in _PROSE.finditer(text):
        parts.append(text[pos : m.start()])
        parts.append(_prose_token(m, repo_url))
        pos = m.end()
    parts.append(text[pos:])
    return _join(parts)


def _split_line(line: str) -> list[tuple[str, str]]:
    """Split one prose line into ("prose"|"code"|"raw", text) pieces; unmatched backtick runs become escaped raw."""
    pieces: list[tuple[str, str]] = []
    runs = [(m.start(), m.end()) for m in re.finditer(r"`+", line)]
    start = 0  # start of the pending prose
    pos = 0
    idx = 0
    while idx < len(runs):
        j, k = runs[idx]
        if j < pos:
            idx += 1
            continue
        slashes = len(line[start:j]) - len(line[start:j].rstrip("\\"))
        if slashes % 2 == 1:  # the first backtick is escaped; the rest of the run starts a new one
            j += 1
            if j == k:
                idx += 1
                continue
            runs[idx] = (j, k)
            pieces.append(("prose", line[start:j]))
            start = pos = j
            continue
        n = k - j
        close = next((c for c in range(idx + 1, len(runs)) if runs[c][1] - runs[c][0] == n), None)
        if close is not None:
            pieces.append(("prose", line[start:j]))
            pieces.append(("code", line[j : runs[close][1]]))
            start = pos = runs[close][1]
            idx = close + 1
        else:
            pieces.append(("prose", line[start:j]))
            pieces.append(("raw", "\\`" * n))
            start = pos = k
            idx += 1
    pieces.append(("prose", line[start:]))
    return [p for p in pieces if p[1]]


def _join(parts: list[str]) -> str:
    """Concatenate pieces, separating a backtick from a preceding backtick or backslash so runs never merge."""
    out = ""
    for part in parts:
        if out and part and part[0] == "`" and out[-1] in "`\\":
            out += " "
        if out and part and out[-1] == "`" and part[0] == "`":
            out += " "
        out += part
    return out


def _prose_line(line: str, repo_url: str) -> str:
    """Sanitise one line outside fenced code."""
    parts: list[str] = []
    for kind, text in _split_line(line):
        if kind == "code":
            parts.append(_defuse_markers(_defuse_bot_words(text)))
        elif kind == "raw":
            parts.append(text)
        else:
            parts.append(_prose_segment(text, repo_url))
    out = _join(parts)
    return re.sub(r"^(" + _LEAD + r")/(?=[A-Za-z])", r"\1\\/", out)


_FENCE_OPEN = re.compile(r"(?P<fence>`{3,})(?P<info>[^`]*)|(?P<tfence>~{3,})(?P<tinfo>.*)")


def _one_pass(text: str, repo_url: str) -> str:
    """One sanitising pass over markdown text (see the module docstring)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            m = _FENCE_OPEN.fullmatch(line)
            if m:
                fence = m.group("fence") or m.group("tfence")
                out.append(_defuse_code(line))
            else:
                out.append(_prose_line(line, repo_url))
        else:
            if re.fullmatch(r" {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*", line):
                fence = None
            out.append(_defuse_code(line))
    if fence is not None:
        out.append(fence)
    return _defuse_bot_words("\n".join(out))  # also catches `bors` and its command on different lines


def _normalise(text: str) -> str:
    """Unify line endings and drop NULs."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def sanitize_markdown(text: str, repo_url: str = "") -> str:
    """Sanitise markdown the model wrote (finding body, summary); `repo_url` is e.g. https://github.com/o/r."""
    current = mask_secrets(_normalise(text))
    for _ in range(6):
        nxt = mask_secrets(_one_pass(current, repo_url))
        if nxt == current:
            break
        current = nxt
    return current


def sanitize_inline(text: str, repo_url: str = "") -> str:
    """Sanitise one line of model text (a title, a reason): whitespace collapsed, no block constructs."""
    line = " ".join(mask_secrets(_normalise(text)).split())
    for _ in range(6):
        nxt = " ".join(mask_secrets(_prose_line(line, repo_url)).split())
        if nxt == line:
            break
        line = nxt
    return line


def sanitize_code(text: str) -> str:
    """Sanitise code that must stay code (a suggestion): secrets masked and markers defused, nothing else."""
    return _defuse_markers(mask_secrets(_normalise(text)))


def has_command_lines(code: str) -> bool:
    """Whether code contains lines other bots may read as commands (`/merge`, `bors r+`)."""
    return _defuse_code(code) != _defuse_markers(code)


def cap(text: str, limit: int, sanitise: Callable[[str], str]) -> str:
    """`sanitise(text)` cut to at most `limit` characters, ending with an explicit "(truncated)" marker if cut."""
    out = sanitise(text)
    if len(out) <= limit:
        return out
    source = mask_secrets(_normalise(text))
    suffix = f"\n\n{TRUNCATED}" if "\n" in source else f" {TRUNCATED}"
    keep = max(0, limit - len(suffix))
    while True:
        out = sanitise(source[:keep]).rstrip() + suffix
        if len(out) <= limit or keep == 0:
            return out[:limit]
        keep = min(keep - 1, keep * 9 // 10)


def sanitize_finding(
    finding: Finding, repo_url: str = "", *, body_max: int = BODY_MAX
) -> tuple[Finding, str | None]:
    """The finding with title, body and suggestion sanitised and capped, plus a note if the suggestion was withheld."""
    title = cap(finding.title, TITLE_MAX, lambda t: sanitize_inline(t, repo_url)) or "(untitled finding)"
    body = cap(finding.body, body_max, lambda t: sanitize_markdown(t, repo_url))
    suggestion = finding.suggestion
    note = None
    if suggestion is not None:
        code = sanitize_code(suggestion)
        if len(code) > SUGGESTION_MAX:
            note = f"A suggested change was withheld: it is longer than {SUGGESTION_MAX:,} characters."
            suggestion = None
        elif has_command_lines(code):
            note = "A suggested change was withheld: it contains lines other bots read as commands."
            suggestion = None
        else:
            suggestion = code
    return replace(finding, title=title, body=body, suggestion=suggestion), note
