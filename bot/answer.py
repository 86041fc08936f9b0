"""The model's answer: one pydantic definition that validates it and yields the JSON schema the API is sent.

Structured outputs accept a subset of JSON Schema (no `minLength`, `minimum` and the like, every object closed
with `additionalProperties: false`), so `output_schema` keeps only that subset of the model's schema, inlines
its `$ref`s and writes nullable scalars as a type list; the dropped constraints are still enforced here, by
`parse_answer`, when the answer comes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.contract import Recheck
from bot.domain import Category, Finding, Severity, Side

MAX_PATH_CHARS: Final = 1_000
MAX_TITLE_CHARS: Final = 1_000
MAX_TEXT_CHARS: Final = 40_000


class FindingAnswer(BaseModel):
    """One finding as the model writes it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    side: Literal["right", "left"]
    severity: Severity
    category: Category
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)
    suggestion: str | None
    evidence: str

    @field_validator("side", "severity", "category", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ordered(self) -> FindingAnswer:
        if self.end_line < self.start_line:
            raise ValueError("end_line precedes start_line")
        return self

    def to_finding(self) -> Finding:
        """The domain finding, its texts capped."""
        # Structured outputs cannot bound string lengths, so the boundary does: the sanitiser later caps far
        # lower with a visible "(truncated)"; these limits only keep pathological answers from costing CPU.
        return Finding(
            path=self.path[:MAX_PATH_CHARS],
            start_line=self.start_line,
            end_line=self.end_line,
            side=Side.RIGHT if self.side == "right" else Side.LEFT,
            severity=self.severity,
            category=self.category,
            title=self.title.strip()[:MAX_TITLE_CHARS],
            body=self.body.strip()[:MAX_TEXT_CHARS],
            suggestion=self.suggestion[:MAX_TEXT_CHARS] if self.suggestion is not None else None,
            evidence=self.evidence[:MAX_TEXT_CHARS],
        )


class VerdictAnswer(BaseModel):
    """The verification turn's judgement of one finding of the answer before it (by index)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    keep: bool
    reason: str


class EarlierAnswer(BaseModel):
    """The judgement of one earlier finding the batch listed for a re-check (by its id)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: Literal["fixed", "present"]
    reason: str

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Answer(BaseModel):
    """The model's whole answer for one batch."""

    model_config = ConfigDict(extra="forbid")

    summary: str
    findings: list[FindingAnswer]
    # Only the verification turn fills it; optional, so one schema (and one cached prefix) serves both turns.
    verdicts: list[VerdictAnswer] = Field(default_factory=list)
    # Only a batch that lists earlier findings fills it; optional for the same reason.
    earlier: list[EarlierAnswer] = Field(default_factory=list)


def parse_answer(text: str) -> tuple[str, tuple[Finding, ...]]:
    """Validate the model's JSON answer; raises ValueError (incl. pydantic's ValidationError) when it is unusable."""
    answer = Answer.model_validate(json.loads(text))
    return answer.summary.strip(), tuple(f.to_finding() for f in answer.findings)


def parse_verdicts(text: str) -> dict[int, tuple[bool, str]]:
    """The verification turn's verdicts by finding index; raises ValueError when the answer is unusable."""
    answer = Answer.model_validate(json.loads(text))
    return {v.index: (v.keep, v.reason) for v in answer.verdicts}


def parse_rechecks(text: str) -> tuple[Recheck, ...]:
    """The answer's judgements of earlier findings (ids unvalidated: the core keeps only those it sent)."""
    answer = Answer.model_validate(json.loads(text))
    return tuple(Recheck(e.id.strip()[:20], e.status == "fixed", e.reason.strip()[:MAX_TITLE_CHARS])
                 for e in answer.earlier)


class ThreadReply(BaseModel):
    """The model's answer to a question asked in one of the bot's review threads."""

    model_config = ConfigDict(extra="forbid")

    answer: str


def parse_thread_reply(text: str) -> str:
    """The answer's text, stripped and capped; raises ValueError when the answer is unusable or empty."""
    reply = ThreadReply.model_validate(json.loads(text))
    answer = reply.answer.strip()[:MAX_TEXT_CHARS]
    if not answer:
        raise ValueError("empty answer")
    return answer


# Key order is fixed so the schema's text, part of the cached prompt prefix, is stable across pydantic versions.
_KEPT: Final = ("type", "enum", "properties", "items", "required", "additionalProperties")
_SCALARS: Final = frozenset({"string", "integer", "number", "boolean", "null"})


def output_schema() -> dict[str, Any]:
    """The JSON schema sent as `output_config.format.schema`, derived from `Answer` (see the module docstring)."""
    full = Answer.model_json_schema()
    return _structured(full, full.get("$defs", {}))


def thread_output_schema() -> dict[str, Any]:
    """The schema of a thread answer (`ThreadReply`), in the same structured-outputs subset."""
    full = ThreadReply.model_json_schema()
    return _structured(full, full.get("$defs", {}))


def _structured(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """`node` in the structured-outputs subset: `$ref` inlined, nullable scalars as type lists, the rest dropped."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _structured(defs[ref.removeprefix("#/$defs/")], defs)
    if "anyOf" in node:
        variants = [_structured(v, defs) for v in node["anyOf"]]
        if all(list(v) == ["type"] and v["type"] in _SCALARS for v in variants):
            return {"type": [v["type"] for v in variants]}
        return {"anyOf": variants}
    out: dict[str, Any] = {}
    for key in _KEPT:
        if key not in node:
            continue
        value = node[key]
        if key == "properties":
            value = {name: _structured(sub, defs) for name, sub in value.items()}
        elif key == "items":
            value = _structured(value, defs)
        out[key] = value
    return out
