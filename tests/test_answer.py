"""The model's answer: one pydantic definition validates answers and yields the schema the API is sent."""

from __future__ import annotations

import json
from typing import Any, Literal

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from bot.answer import Answer, FindingAnswer, _structured, output_schema, parse_answer
from bot.contract import BatchInput, PullContext
from bot.domain import Category, Severity
from bot.model.client import make_client
from bot.model.reviewer import Reviewer
from bot.settings import load_settings
from tests.fakes.claude import FakeClaude, _check_schema, _schema_errors


async def test_schema_sent_to_the_api_is_the_one_derived_from_the_answer_model(fake_claude: FakeClaude) -> None:
    settings = load_settings(anthropic_api_key=fake_claude.api_key, anthropic_base_url=fake_claude.base_url,
                             model_max_retries=0)
    async with make_client(settings) as client:
        reviewer = Reviewer(client, "claude-sonnet-5-5")
        await reviewer.review(PullContext("o/r", "t", "b"), [BatchInput(0, "FILE a.py (added)\nR 1 + x\n", ("a.py",))])
    sent = fake_claude.requests[0].json["output_config"]["format"]["schema"]
    assert sent == output_schema()
    item = sent["properties"]["findings"]["items"]
    assert list(sent["properties"]) == list(Answer.model_fields)
    assert list(item["properties"]) == list(FindingAnswer.model_fields) == item["required"]
    assert item["properties"]["severity"]["enum"] == [s.value for s in Severity]
    assert item["properties"]["category"]["enum"] == [c.value for c in Category]


def test_derived_schema_is_in_the_structured_outputs_subset() -> None:
    _check_schema(output_schema(), "schema")  # the fake's rules: raises on unsupported keys or open objects
    text = json.dumps(output_schema())
    assert "$ref" not in text and "minLength" not in text and '"title": "' not in text


class _Kind(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["a", "b"]
    weight: int | None = Field(ge=0)


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=9)
    kinds: list[_Kind]
    choice: _Kind | str


def test_derivation_follows_the_model_it_is_given() -> None:
    full = _Probe.model_json_schema()
    derived = _structured(full, full["$defs"])
    kind = {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": ["a", "b"]}, "weight": {"type": ["integer", "null"]}},
        "required": ["name", "weight"],
        "additionalProperties": False,
    }
    assert derived == {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "kinds": {"type": "array", "items": kind},
            "choice": {"anyOf": [kind, {"type": "string"}]},
        },
        "required": ["label", "kinds", "choice"],
        "additionalProperties": False,
    }


_text = st.text(min_size=1, max_size=20)
_findings = st.builds(
    FindingAnswer,
    path=_text, start_line=st.just(3), end_line=st.integers(3, 9), side=st.sampled_from(["right", "left"]),
    severity=st.sampled_from(Severity), category=st.sampled_from(Category), title=_text, body=_text,
    suggestion=st.none() | st.text(max_size=20),
)


@given(st.builds(Answer, summary=st.text(max_size=20), findings=st.lists(_findings, max_size=3)))
def test_every_valid_answer_matches_the_schema_and_parses_back(answer: Answer) -> None:
    data: dict[str, Any] = answer.model_dump(mode="json")
    assert _schema_errors(data, output_schema(), "$") == []
    summary, findings = parse_answer(json.dumps(data))
    assert [f.path for f in findings] == [f.path for f in answer.findings]
    assert summary == answer.summary.strip()
