"""Repository configuration: layering server < org `.github` < repository (base branch), line-numbered problems."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from bot.config.ceilings import Ceilings, Violation, effective_model, within_ceilings
from bot.config.schema import Effort, RepoConfig
from bot.errors import NotFound
from bot.settings import Settings

CONFIG_PATH = ".github/senior-review.yml"
ORG_CONFIG_REPO = ".github"
MAX_CONFIG_BYTES = 64 * 1024
MAX_DEPTH = 16
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "senior-review.schema.json"

class ConfigReader(Protocol):
    """What configuration loading needs from GitHub (the integrator passes an adapter over `RepoClient`s)."""

    async def get_file(self, owner: str, repo: str, path: str, ref: str | None) -> str | None:
        """The file's text at `ref` (None: the default branch); None (or NotFound) when absent; RetryLater passes."""
        ...


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


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """The configuration a review runs with, the layers applied, and the problems of skipped layers."""

    config: RepoConfig
    model: str
    effort: Effort | None
    sources: tuple[str, ...] = ("server defaults",)
    problems: tuple[ConfigProblem, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- parsing one layer


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


# ---------------------------------------------------------------- layering


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and scalars in `override` replace `base`'s."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


async def load_effective_config(
    reader: ConfigReader, owner: str, repo: str, default_branch: str | None, settings: Settings
) -> EffectiveConfig:
    """Server settings >= org `.github` repo >= this repo, both files read from their default branch.

    The repository's file is read from `default_branch` (None: whatever GitHub calls the default), never from
    the branch a pull request targets: a PR into an old branch must not escape the current settings. Invalid
    layers are skipped; keys above a higher layer's ceiling are dropped (see `bot.config.ceilings`).
    """
    where = f"@{default_branch}" if default_branch else ""
    layers = [
        (f"{owner}/{ORG_CONFIG_REPO}:{CONFIG_PATH}", owner, ORG_CONFIG_REPO, None),
        (f"{owner}/{repo}:{CONFIG_PATH}{where}", owner, repo, default_branch or None),
    ]
    if repo == ORG_CONFIG_REPO:
        layers = layers[1:]  # the org repo's own PRs: read it once
    ceilings = Ceilings.of_server(settings)
    merged: dict[str, Any] = {"budgets": ceilings.server_budgets()}
    sources = ["server defaults"]
    problems: list[ConfigProblem] = []
    for source, layer_owner, layer_repo, ref in layers:
        try:
            text = await reader.get_file(layer_owner, layer_repo, CONFIG_PATH, ref)
        except NotFound:  # e.g. the App is not installed on the org's `.github` repository
            text = None
        if text is None:
            continue
        # YAML and validation (globs compiled) are CPU work on a file of up to 64 KiB: off the event loop.
        data, layer_problems = await asyncio.to_thread(parse_layer, text, source)
        problems.extend(layer_problems)
        if layer_problems or not data:
            continue
        data, ceilings, violations = within_ceilings(data, ceilings, source)
        problems.extend(_violation_problems(text, source, violations))
        merged = deep_merge(merged, data)
        sources.append(source)
    config = await asyncio.to_thread(RepoConfig.model_validate, merged)
    return EffectiveConfig(
        config=config,
        model=effective_model(config.model, settings.review_model, ceilings),
        effort=config.effort or settings.review_effort,
        sources=tuple(sources),
        problems=tuple(problems),
    )


def _violation_problems(text: str, source: str, violations: Sequence[Violation]) -> list[ConfigProblem]:
    """Ceiling violations as problems with the line of their key (the file parsed already, so it composes)."""
    if not violations:
        return []
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return [
        ConfigProblem(source, _line(_find(root, v.path, key=True)), f"{_dotted(v.path)}: {v.message}", scope="key")
        for v in violations
    ]


def problems_comment(problems: Sequence[ConfigProblem]) -> str:
    """The pull request comment naming invalid configuration (messages in a code block: nothing renders or pings)."""
    lines = "\n".join(str(problem) for problem in problems)
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", lines)), default=0) + 1)
    files = any(problem.scope == "file" for problem in problems)
    keys = any(problem.scope == "key" for problem in problems)
    what = (
        ("these files were ignored and the review used the remaining layers (organization or server defaults)"
         if files else "")
        + ("; " if files and keys else "")
        + ("these settings were ignored and the higher layer's limit applies" if keys else "")
    )
    return (
        f"The review configuration has errors, so {what}:\n\n"
        f"{fence}text\n{lines}\n{fence}\n\n"
        "Check a file locally with `python -m bot check-config .github/senior-review.yml`."
    )


def default_config(settings: Settings) -> EffectiveConfig:
    """The server defaults alone (no repository files), e.g. before configuration can be read."""
    config = RepoConfig.model_validate({"budgets": Ceilings.of_server(settings).server_budgets()})
    return EffectiveConfig(config=config, model=settings.review_model, effort=settings.review_effort)


# ---------------------------------------------------------------- files, dumps, schema


def check_config_file(path: str | Path, allowed_models: Sequence[str] | None = None) -> list[str]:
    """Validate a configuration file; one `file:line: message` string per problem, [] when valid."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{file}: no such file"]
    except IsADirectoryError:
        return [f"{file}: is a directory, not a file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{file}: cannot read: {exc}"]
    _, problems = parse_layer(text, str(file), allowed_models)
    return [str(problem) for problem in problems]


def dump_config_yaml(config: RepoConfig) -> str:
    """The configuration as YAML, keys in documentation order (the `config` command's reply)."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `.github/senior-review.yml`, generated from `RepoConfig`."""
    schema = RepoConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text() -> str:
    """The committed schema file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.config.load --write-schema | --check-schema`: regenerate or verify the committed schema."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write-schema"]:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(json_schema_text(), encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if args == ["--check-schema"]:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.is_file() else ""
        if current != json_schema_text():
            print(f"{SCHEMA_PATH} is out of date: run python -m bot.config.load --write-schema", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH}: up to date")
        return 0
    print("usage: python -m bot.config.load --write-schema | --check-schema", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
