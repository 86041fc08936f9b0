"""One configuration file (a layer) read safely: size and nesting bounded, no YAML aliases, no duplicate keys,
validated against `RepoConfig`; every problem with its line (pydantic's error paths mapped back to the YAML)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from bot.config.ceilings import Violation
from bot.config.schema import RepoConfig

MAX_CONFIG_BYTES = 64 * 1024
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One reason a configuration layer was skipped: where (`owner/repo:path`), which line, what."""

    source: str
    line: int | None
    message: str
    scope: str = "file"  # "file": the whole layer was skipped; "key": only this key was ignored

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"

    @property
    def fingerprint(self) -> str:
        """A stable id, so the same problem is commented on a pull request only once."""
        return hashlib.sha256(str(self).encode()).hexdigest()[:16]


def parse_layer(
    text: str, source: str, allowed_models: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Parse and validate one file's text; returns its mapping (empty when invalid) and its problems."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        return {}, [ConfigProblem(source, None, f"file larger than {MAX_CONFIG_BYTES // 1024} KiB")]
    try:
        event_problems = _event_problems(text, source)
        if event_problems:
            return {}, event_problems
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        return {}, [ConfigProblem(source, line, f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return {}, [ConfigProblem(source, None, f"invalid YAML: {exc}")]
    if data is None:
        return {}, []
    duplicates = _duplicate_keys(root, source)
    if duplicates:
        return {}, duplicates
    if not isinstance(data, dict):
        return {}, [ConfigProblem(source, _line(root), "the file must be a mapping of keys to values")]
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(root, source, error) for error in exc.errors()]
        return {}, sorted(problems, key=lambda problem: problem.line or 0)
    if allowed_models is not None and config.model is not None and config.model not in allowed_models:
        allowed = ", ".join(allowed_models) or "(none)"
        line = _line(_find(root, ("model",), key=False))
        message = f"model: {config.model!r} is not allowed on this server (allowed: {allowed})"
        return {}, [ConfigProblem(source, line, message)]
    return data, []


def _event_problems(text: str, source: str) -> list[ConfigProblem]:
    """Aliases (YAML bombs) and deep nesting, found by the iterative parser before anything recursive runs."""
    problems: list[ConfigProblem] = []
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent):
            problems.append(ConfigProblem(source, line, "YAML aliases are not supported"))
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return [*problems, ConfigProblem(source, line, f"nested deeper than {MAX_DEPTH} levels")]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return problems


def _duplicate_keys(root: yaml.Node | None, source: str) -> list[ConfigProblem]:
    """Duplicate keys, which safe_load accepts silently (the last one would win)."""
    problems: list[ConfigProblem] = []

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        problems.append(ConfigProblem(source, _line(key), f"duplicate key {key.value!r}"))
                    keys.add(key.value)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    if root is not None:
        walk(root)
    return problems


def _problem(root: yaml.Node | None, source: str, error: Mapping[str, Any]) -> ConfigProblem:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        node = _find(root, loc, key=True)
        allowed = _allowed_keys(loc[:-1])
        message = f"unknown key {loc[-1]!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        return ConfigProblem(source, _line(node), f"{_dotted(loc[:-1]) or 'top level'}: {message}")
    node = _find(root, loc, key=error["type"] == "missing")
    return ConfigProblem(source, _line(node), f"{_dotted(loc)}: {_humanise(str(error['msg']))}")


def _find(root: yaml.Node | None, loc: Sequence[Any], key: bool) -> yaml.Node | None:
    """The deepest node along `loc` (the key node of the last step when `key`)."""
    node = root
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            pairs = ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part))
            match = next(pairs, None)
            if match is None:
                return node
            node = match[0] if (last and key) else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _humanise(message: str) -> str:
    # The models use tuples for immutability; the YAML author wrote lists.
    message = message.removeprefix("Value error, ")
    return message.replace("valid tuple", "valid list").replace("Tuple should", "List should")


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    model: Any = RepoConfig
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(str(part))
        if info is None:
            return []
        annotation = info.annotation
        model = getattr(annotation, "__args__", (annotation,))[0] if hasattr(annotation, "__args__") else annotation
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else []


def violation_problems(text: str, source: str, violations: Sequence[Violation]) -> list[ConfigProblem]:
    """Ceiling violations as problems with the line of their key (the file parsed already, so it composes)."""
    if not violations:
        return []
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return [
        ConfigProblem(source, _line(_find(root, v.path, key=True)), f"{_dotted(v.path)}: {v.message}", scope="key")
        for v in violations
    ]
