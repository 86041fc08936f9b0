"""Repository configuration: layering server < org `.github` < repository (default branch), each layer within the
ceilings of those above it, and the problems of the layers skipped (one layer is read by `bot.config.layer`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config.ceilings import Ceilings, effective_model, within_ceilings
from bot.config.layer import ConfigProblem, parse_layer, violation_problems
from bot.config.schema import Effort, RepoConfig
from bot.errors import NotFound
from bot.settings import Settings

CONFIG_PATH = ".github/senior-review.yml"
ORG_CONFIG_REPO = ".github"


class ConfigReader(Protocol):
    """What configuration loading needs from GitHub (the integrator passes an adapter over `RepoClient`s)."""

    async def get_file(self, owner: str, repo: str, path: str, ref: str | None) -> str | None:
        """The file's text at `ref` (None: the default branch); None (or NotFound) when absent; RetryLater passes."""
        ...


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """The configuration a review runs with, the layers applied, and the problems of skipped layers."""

    config: RepoConfig
    model: str
    effort: Effort | None
    sources: tuple[str, ...] = ("server defaults",)
    problems: tuple[ConfigProblem, ...] = field(default_factory=tuple)


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
        if violations:  # composing the file again to find each key's line: CPU work too
            problems.extend(await asyncio.to_thread(violation_problems, text, source, violations))
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


