"""Prompt files and their strict `{{name}}` templates, with nonce-delimited untrusted content.

Prompt files live in the repository's `prompts/` directory, found relative to this package
(`Path(__file__).parent.parent / "prompts"`: a checkout or an editable install). A wheel install ships them
as data files under `<prefix>/share/senior-review/prompts` (pyproject `[tool.setuptools.data-files]`), which
is the fallback. `system_prompt()` is static text (no variables), so it is identical on every request and the
prompt cache can hold it; everything per-review goes in the user message built by `batch_prompt()`.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.contract import EarlierFinding
from bot.invisible import mark_invisible, strip_html_comments

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NONCE_BYTES = 16
#: Characters of an earlier finding's text shown when it is re-checked (the title and the first sentences decide).
EARLIER_BODY_CHARS = 600
RECHECK_ONLY_TASK = (
    "This batch is shown only to re-check the earlier findings listed at its end: answer with `findings` empty "
    "and one `earlier` entry per listed id.\n"
)


class TemplateError(ValueError):
    """A template names a variable that was not given, was given one it does not use, or is missing."""


def prompts_dir() -> Path:
    """The directory holding the prompt files: the checkout's `prompts/`, else the installed data files."""
    candidates = (
        Path(__file__).resolve().parent.parent / "prompts",
        Path(sys.prefix) / "share" / "senior-review" / "prompts",
    )
    for candidate in candidates:
        if (candidate / "persona.md").is_file():
            return candidate
    raise TemplateError(f"prompt files not found; looked in {', '.join(str(c) for c in candidates)}")


@lru_cache(maxsize=32)
def load_prompt(name: str, directory: Path | None = None) -> str:
    """The text of `prompts/<name>.md` (read once per process)."""
    path = (directory or prompts_dir()) / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"prompt file not found: {path}") from None


def variables(template: str) -> frozenset[str]:
    """The variable names a template uses."""
    return frozenset(_VARIABLE.findall(template))


def render(template: str, **values: str) -> str:
    """Substitute every `{{name}}` in one pass; a missing or unused variable raises TemplateError.

    Substituted text is never scanned again, so `{{...}}` inside a value (for example in a diff) stays literal.
    """
    used = variables(template)
    missing = sorted(used - values.keys())
    unknown = sorted(values.keys() - used)
    if missing:
        raise TemplateError(f"template variable(s) not given: {', '.join(missing)}")
    if unknown:
        raise TemplateError(f"unknown template variable(s): {', '.join(unknown)}")
    for name in used:
        if not isinstance(values[name], str):
            raise TemplateError(f"template variable {name} must be a string")
    return _VARIABLE.sub(lambda match: values[match.group(1)], template)


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def shown_path(path: str) -> str:
    """A file name for the prompt: JSON-quoted when it holds line breaks or controls, hidden characters marked."""
    return mark_invisible(json.dumps(path, ensure_ascii=False) if _CONTROL.search(path) else path)


@lru_cache(maxsize=32)
def shown_text(text: str, *, strip: bool = False) -> str:
    """A title or description for the prompt: HTML comments removed (and surrounding whitespace if `strip`),
    hidden characters marked. Memoised: every batch of a review repeats the same description (up to 65,536
    characters)."""
    text = strip_html_comments(text)
    return mark_invisible(text.strip() if strip else text)


def new_nonce(*untrusted: str) -> str:
    """A random hex nonce that occurs in none of the untrusted texts (drawn again if it does)."""
    while True:
        nonce = secrets.token_hex(_NONCE_BYTES)
        if not any(nonce in text for text in untrusted):
            return nonce


def system_prompt(directory: Path | None = None) -> str:
    """The static system prompt: the persona, then the review instructions."""
    persona = load_prompt("persona", directory)
    review = load_prompt("review", directory)
    for name, text in (("persona", persona), ("review", review)):
        if variables(text):
            raise TemplateError(f"prompts/{name}.md must be static (it is cached); found variables")
    return persona.rstrip() + "\n\n" + review.rstrip() + "\n"


def thread_system_prompt(directory: Path | None = None) -> str:
    """The static system prompt of thread answers: the persona, then how to answer in a finding's thread."""
    persona = load_prompt("persona", directory)
    thread = load_prompt("thread", directory)
    if variables(thread):
        raise TemplateError("prompts/thread.md must be static (it is cached); found variables")
    return persona.rstrip() + "\n\n" + thread.rstrip() + "\n"


@dataclass(frozen=True, slots=True)
class BatchPrompt:
    """The user message for one batch and the nonce that delimits its untrusted part."""

    text: str
    nonce: str


def batch_prompt(
    *,
    repo: str,
    title: str,
    body: str,
    files: Sequence[str],
    diff: str,
    instructions: str = "",
    language: str = "English",
    directory: Path | None = None,
    earlier: Sequence[EarlierFinding] = (),
    recheck_only: bool = False,
) -> BatchPrompt:
    """Render the user message: trusted preamble and owner instructions, then the untrusted data block (ending
    with the earlier findings to re-check, if any)."""
    file_list = "\n".join(f"- {shown_path(path)}" for path in files) or "(none)"
    title, body = shown_text(title), shown_text(body, strip=True)
    earlier_text = earlier_section(earlier)
    untrusted = (mark_invisible(repo), title, body or "(no description)", file_list, diff, earlier_text)
    nonce = new_nonce(*untrusted, instructions)
    owner = ""
    if instructions.strip():
        owner = render(load_prompt("owner_instructions", directory), instructions=instructions.strip())
    text = render(
        load_prompt("batch", directory),
        nonce=nonce,
        language=language,
        owner_instructions=owner,
        repo=untrusted[0],
        title=untrusted[1],
        body=untrusted[2],
        files=untrusted[3],
        diff=untrusted[4],
        earlier=untrusted[5],
        task=RECHECK_ONLY_TASK if recheck_only and earlier else "",
    )
    return BatchPrompt(text=text, nonce=nonce)


def earlier_section(items: Sequence[EarlierFinding]) -> str:
    """The list of earlier findings to re-check, for the end of the untrusted block ('' when there are none).

    Titles and texts are earlier model output: shown as data, hidden characters marked, the text indented under
    its item and cut to EARLIER_BODY_CHARS.
    """
    if not items:
        return ""
    lines = ["", "Earlier findings to re-check (line numbers as before this push):"]
    for item in items:
        span = f"line {item.start_line}" if item.start_line == item.end_line else \
            f"lines {item.start_line}-{item.end_line}"
        title = mark_invisible(" ".join(item.title.split()))
        lines.append(f"- {item.id}: {shown_path(item.path)}, {span} ({item.category}): {title}")
        body = item.body.strip()
        if len(body) > EARLIER_BODY_CHARS:
            body = body[:EARLIER_BODY_CHARS].rstrip() + " …"
        lines += [f"  {line}" if line else "" for line in mark_invisible(body).splitlines()]
    return "\n".join(lines) + "\n"


def thread_prompt(
    *, repo: str, title: str, where: str, finding: str, code: str, thread: str, asker: str, question: str,
    language: str = "English", directory: Path | None = None,
) -> BatchPrompt:
    """The user message of a thread answer: every part untrusted, inside one nonce-delimited block."""
    untrusted = {
        "repo": mark_invisible(repo), "title": mark_invisible(strip_html_comments(title)), "where": where,
        "finding": mark_invisible(finding.strip()) or "(empty)", "code": code or "(not available)",
        "thread": mark_invisible(thread.strip()) or "(no other replies)", "asker": mark_invisible(asker),
        "question": mark_invisible(strip_html_comments(question).strip()),
    }
    nonce = new_nonce(*untrusted.values())
    text = render(load_prompt("thread_question", directory), nonce=nonce, language=language, **untrusted)
    return BatchPrompt(text=text, nonce=nonce)
