"""Budget ceilings across configuration layers: server >= organization `.github` >= repository (no I/O).

A layer may lower a budget or narrow the model allow-list; a value above the ceiling a higher layer set (or a
model outside its list) is a violation: the key is dropped, so the higher ceiling applies, and the rest of the
layer still counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

BUDGET_KEYS = (
    "max_tokens_per_review",
    "max_cost_usd_per_review",
    "max_cost_usd_per_installation_per_day",
    "max_cost_usd_per_pr_per_day",
    "max_cost_usd_per_author_per_day",
)
SERVER = "server settings"


class ServerLimits(Protocol):
    """The server settings that set the top ceilings."""

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """ALLOWED_MODELS."""
        ...


@dataclass(frozen=True, slots=True)
class Violation:
    """A key of a layer that tried to raise a ceiling: where it is (`path`) and why it was ignored."""

    path: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class Ceilings:
    """The highest value each budget may take, the models allowed, and which layer set each."""

    budgets: Mapping[str, float]
    allowed_models: tuple[str, ...]
    set_by: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_server(cls, settings: ServerLimits) -> Ceilings:
        """The server's own limits (its budget settings and ALLOWED_MODELS), the top of the chain."""
        budgets = {key: float(getattr(settings, key)) for key in BUDGET_KEYS}
        return cls(budgets, tuple(settings.allowed_models), {key: SERVER for key in (*BUDGET_KEYS, "models")})

    def server_budgets(self) -> dict[str, Any]:
        """The budgets as a configuration mapping (the bottom layer every file is merged over)."""
        return {key: int(value) if key == "max_tokens_per_review" else value for key, value in self.budgets.items()}


def within_ceilings(
    data: Mapping[str, Any], ceilings: Ceilings, layer: str
) -> tuple[dict[str, Any], Ceilings, list[Violation]]:
    """`data` without the keys that exceed `ceilings`, the ceilings this layer leaves below, and the violations."""
    kept = dict(data)
    budgets = dict(ceilings.budgets)
    allowed = ceilings.allowed_models
    set_by = dict(ceilings.set_by)
    violations: list[Violation] = []
    layer_budgets = kept.get("budgets")
    if isinstance(layer_budgets, Mapping):
        layer_budgets = dict(layer_budgets)
        for key in BUDGET_KEYS:
            if key not in layer_budgets:
                continue
            value = float(layer_budgets[key])
            if value > budgets[key]:
                violations.append(Violation(("budgets", key), (
                    f"{_number(value)} is above the ceiling {_number(budgets[key])} set by {set_by[key]}; "
                    "the ceiling applies (a file may only lower a budget)")))
                del layer_budgets[key]
            else:
                budgets[key], set_by[key] = value, layer
        kept["budgets"] = layer_budgets
    models = kept.get("allowed_models")
    if models is not None:
        wider = [name for name in models if name not in allowed]
        if wider:
            violations.append(Violation(("allowed_models",), (
                f"{', '.join(map(repr, wider))} not in the list allowed by {set_by['models']} "
                f"({_names(allowed)}); a file may only narrow the list")))
            del kept["allowed_models"]
        else:
            allowed, set_by["models"] = tuple(models), layer
    model = kept.get("model")
    if model is not None and model not in allowed:
        violations.append(Violation(("model",), (
            f"{model!r} is not allowed (allowed by {set_by['models']}: {_names(allowed)})")))
        del kept["model"]
    return kept, Ceilings(budgets, allowed, set_by), violations


def effective_model(chosen: str | None, default: str, ceilings: Ceilings) -> str:
    """The model in effect: the chosen one, else the server default, else (narrowed away) the first allowed."""
    if chosen is not None:
        return chosen
    if default in ceilings.allowed_models or ceilings.set_by.get("models") == SERVER or not ceilings.allowed_models:
        return default
    return ceilings.allowed_models[0]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.4g}"


def _names(models: Sequence[str]) -> str:
    return ", ".join(models) or "(none)"
