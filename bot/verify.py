"""The verification pass: a second turn of each batch's conversation in which the model checks its own findings.

Pure. The turn's text is `prompts/verify.md` (static: the system prompt and the batch before it are read from the
prompt cache, and the answer schema is the same one, so nothing invalidates that cache). The model answers with a
verdict per finding (`keep`, `reason`); findings it drops are counted in the review body and logged, never posted.
A finding with no verdict, or an answer that cannot be read, keeps every finding: the pass only ever removes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.contract import Dropped
from bot.domain import Finding
from bot.prompts import load_prompt, variables


def verify_turn() -> str:
    """The user message of the verification turn (`prompts/verify.md`, static)."""
    text = load_prompt("verify")
    if variables(text):
        raise ValueError("prompts/verify.md must be static (it follows the cached batch); found variables")
    return text.strip() + "\n"


def apply_verdicts(
    findings: Sequence[Finding], verdicts: Mapping[int, tuple[bool, str]]
) -> tuple[tuple[Finding, ...], tuple[Dropped, ...]]:
    """(kept, dropped): a finding is dropped only by an explicit `keep: false` verdict for its index."""
    kept: list[Finding] = []
    dropped: list[Dropped] = []
    for index, finding in enumerate(findings):
        keep, reason = verdicts.get(index, (True, ""))
        if keep:
            kept.append(finding)
        else:
            dropped.append(Dropped(finding, " ".join(reason.split())[:300]))
    return tuple(kept), tuple(dropped)


def verified_note(checked: int, dropped: int) -> str:
    """The review body's sentence about the verification pass ('' when it dropped nothing)."""
    if not dropped:
        return ""
    noun = "finding" if dropped == 1 else "findings"
    return f"{dropped} {noun} dropped by the verification pass (each finding re-checked: {checked} checked)."
