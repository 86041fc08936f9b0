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

`sanitize_markdown` is idempotent (it iterates its single pass to a fixpoint). Every pattern here runs on RE2
(`bot.linear`; the prose constructs in `bot.prose`) or is a scan by hand: linear in the text, whatever it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.domain import Finding
from bot.linear import linear
from bot.links import repo_link
from bot.masking import mask_secrets
from bot.prose import WS, Construct, bot_words, constructs

TITLE_MAX = 200
BODY_MAX = 16_000
SUGGESTION_MAX = 16_000
COMMENT_MAX = 65_536
TRUNCATED = "(truncated)"
ZWSP = "\u200b"

_REPO_URL_SAFE = linear(r"[A-Za-z0-9\-._~:/?#=&%+]*")
_BACKTICKS = linear(r"`+")
# Any Unicode space (not a newline) or `>` may precede a line's `/command`: other bots trim them all.
_LEAD = "[" + WS.replace(r"\t-\r", r"\t\x0b-\r") + ">]*"
_CODE_COMMAND = linear(r"(?m)^(" + _LEAD + r")/[A-Za-z]")
_PROSE_COMMAND = linear(r"^(" + _LEAD + r")/[A-Za-z]")
_MARKER = linear(r"(?i)<!--[" + WS + r"]*senior-review")
_FENCE_OPEN = linear(r"(?P<fence>`{3,})(?P<info>[^`]*)|(?P<tfence>~{3,})(?P<tinfo>.*)")

# --- small helpers ------------------------------------------------------------------------------------------------


def fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run in `text` (at least three)."""
    return "`" * max(3, _longest_backticks(text) + 1)


def code_span(text: str) -> str:
    """`text` as one inline code span, whatever backticks it contains (newlines become spaces)."""
    text = text.replace("\r", " ").replace("\n", " ")
    if not text:
        return ""
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_backticks(text: str) -> int:
    if "`" not in text:
        return 0
    runs = _BACKTICKS.finditer(text.encode("utf-8", "surrogatepass"))  # bytes: a backtick is one byte
    return max(int(run.end() - run.start()) for run in runs)


def _insert(text: str, positions: list[int], what: str) -> str:
    """`text` with `what` inserted before each of `positions` (ascending)."""
    if not positions:
        return text
    parts, last = [], 0
    for at in positions:
        parts += [text[last:at], what]
        last = at
    parts.append(text[last:])
    return "".join(parts)


def _defuse_markers(text: str) -> str:
    """Break any `<!-- senior-review` so model text can never forge one of our hidden markers."""
    if "<!--" not in text:
        return text
    return _insert(text, [m.start() + 2 for m in _MARKER.finditer(text)], ZWSP)


def _defuse_bot_words(text: str) -> str:
    """A zero-width space inside `bors`/`atlantis` when a command follows, so those bots ignore it."""
    return _insert(text, [start + 1 for start, _ in bot_words(text)], ZWSP)


def _defuse_code(text: str) -> str:
    """Make code lines inert for other bots (zero-width space before `/cmd` and inside `bors r+`) and markers."""
    if "/" in text:
        text = _insert(text, [m.end(1) for m in _CODE_COMMAND.finditer(text)], ZWSP)
    return _defuse_markers(_defuse_bot_words(text))


# --- prose --------------------------------------------------------------------------------------------------------

_TRAILING_CHARS = ".,:;!?'\")]*_~"


def _repo_url(url: str, repo_url: str) -> str | None:
    """`url` normalised when it is one of the repository's own pages, spelled with harmless characters; else None."""
    if _REPO_URL_SAFE.fullmatch(url) is None:
        return None
    return repo_link(url, repo_url)


def _prose_token(c: Construct, repo_url: str) -> str:
    """The inert replacement of one prose construct (see `bot.prose`)."""
    kind, text = c.kind, c.text
    if kind == "image":
        return "(image removed)"
    if kind == "link":
        label = _prose_segment(c.label, repo_url)
        target = _repo_url(c.target, repo_url)
        if target is not None and label:
            return f"[{label}]({target})"
        return label
    if kind == "url":
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
    if kind == "xref":
        return code_span(text)
    if kind == "mention":
        return code_span("@" + c.login)
    if kind == "bot":
        return code_span(c.word)
    if kind == "entity":
        return "\\" + text
    if kind == "mask":
        return "\\*" * len(text)
    if kind == "tilde":
        return "\\~" * len(text)
    if kind == "special":
        return "\\" + text
    return text  # esc: an existing backslash escape stays as it is


def _prose_segment(text: str, repo_url: str) -> str:
    """Sanitise prose that contains no code span."""
    parts: list[str] = []
    pos = 0
    for c in constructs(text):
        parts.append(text[pos : c.start])
        parts.append(_prose_token(c, repo_url))
        pos = c.end
    parts.append(text[pos:])
    return _join(parts)


def _split_line(line: str) -> list[tuple[str, str]]:
    """Split one prose line into ("prose"|"code"|"raw", text) pieces; unmatched backtick runs become escaped raw."""
    pieces: list[tuple[str, str]] = []
    runs = [m.span() for m in _BACKTICKS.finditer(line)] if "`" in line else []
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
    m = _PROSE_COMMAND.match(out) if "/" in out else None
    return _insert(out, [m.end(1)], "\\") if m else out


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: up to 3 spaces, a run as long of its character, blanks."""
    body = line.lstrip(" ")
    run = len(body) - len(body.lstrip(fence[0]))
    return len(line) - len(body) <= 3 and run >= len(fence) and not body[run:].strip(" \t")


def _one_pass(text: str, repo_url: str) -> str:
    """One sanitising pass over markdown text (see the module docstring)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            m = _FENCE_OPEN.fullmatch(line) if line[:1] in ("`", "~") else None
            if m:
                fence = m.group("fence") or m.group("tfence")
                out.append(_defuse_code(line))
            else:
                out.append(_prose_line(line, repo_url))
        else:
            if _closes(line, fence):
                fence = None
            out.append(_defuse_code(line))
    if fence is not None:
        out.append(fence)
    return _defuse_bot_words("\n".join(out))  # also catches `bors` and its command on different lines


def _normalise(text: str) -> str:
    """Unify line endings, drop NULs, and replace lone surrogates (they cannot be encoded, so could not be posted)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
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
        # Bot words over the whole line: a URL kept as a construct can end inside `bors r+` (`.../x#bors r+`).
        nxt = " ".join(mask_secrets(_defuse_bot_words(_prose_line(line, repo_url))).split())
        if nxt == line:
            break
        line = nxt
    return line


def sanitize_code(text: str) -> str:
    """Sanitise code that must stay code (a suggestion): secrets masked and markers defused, nothing else."""
    return _defuse_markers(mask_secrets(_normalise(text)))


def has_command_lines(code: str) -> bool:
    """Whether code contains lines other bots may read as commands (`/merge`, `bors r+`)."""
    code = _normalise(code)
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
