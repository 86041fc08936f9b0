"""The import rules of the layout hold: names come from the module defining them, each client library has one
home, the core reaches no adapter, no two modules import each other, none is loaded by name (read with `ast`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each client library and the only modules that may import it (README, Layout).
LIBRARY_HOMES = {
    "githubkit": "bot.github.",
    "anthropic": "bot.model.",  # the package: client, reviewer, thread (bot.model_run and model_call: SDK-free)
    "unidiff": "bot.diff.parse",
}
# The core (these modules and packages) does no I/O: neither adapters of ours nor libraries that talk outside.
CORE = ("bot.diff", "bot.analysis", "bot.findings", "bot.render", "bot.sanitize", "bot.budget",
        "bot.prompts", "bot.contract", "bot.answer", "bot.prices", "bot.model_run", "bot.model_call")
ADAPTERS = ("bot.github", "bot.model", "bot.store", "bot.app", "bot.jobs", "bot.webhook", "githubkit", "anthropic",
            "httpx", "sqlalchemy", "starlette")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(path: Path) -> Iterator[tuple[str, ast.ImportFrom | ast.Import]]:
    """Every module `path` imports, anywhere in it (function-level and TYPE_CHECKING imports included)."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    yield f"{node.module}.{alias.name}", node


def _defined(path: Path) -> set[str]:
    """Names a module binds itself at top level (classes, functions, assignments), not names it imports."""
    names: set[str] = set()
    for node in _tree(path).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in _imports(path) if target in MODULES and target != name}
            for name, path in MODULES.items()}


def _reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_names_are_imported_from_the_module_that_defines_them() -> None:
    sources = [path for top in ("bot", "tests", "bench") for path in sorted((ROOT / top).rglob("*.py"))]
    wrong = []
    for path in [*sources, ROOT / "dev.py"]:
        for module, node in _imports(path):
            if not isinstance(node, ast.ImportFrom) or node.module != module or module not in MODULES:
                continue
            defined = _defined(MODULES[module])
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {a.name} from {module}" for a in node.names
                      if a.name not in defined and f"{module}.{a.name}" not in MODULES]
    assert not wrong, "imported from a module that only re-exports them:\n" + "\n".join(wrong)


def test_each_client_library_is_imported_by_its_home_only() -> None:
    outside = sorted(
        f"{name} imports {module}" for name, path in MODULES.items() for module, _ in _imports(path)
        if (home := LIBRARY_HOMES.get(module.split(".")[0])) is not None
        and not ((name.startswith(home) or name == home[:-1]) if home.endswith(".") else name == home)
    )
    assert not outside, outside


def test_the_core_reaches_no_adapter() -> None:
    graph = _graph()
    libraries = {name: {m.split(".")[0] for m, _ in _imports(path)} for name, path in MODULES.items()}
    core = [name for name in MODULES if any(name == c or name.startswith(c + ".") for c in CORE)]
    assert len(core) > len(CORE)
    for name in core:
        reached = _reachable(name, graph) | {name}
        touched = reached | {lib for module in reached for lib in libraries[module]}
        assert not {m for m in touched if any(m == a or m.startswith(a + ".") for a in ADAPTERS)}, (name, touched)


def test_no_two_modules_import_each_other() -> None:
    graph = _graph()
    reach = {name: _reachable(name, graph) for name in graph}
    cycles = {frozenset({a} | {b for b in reach[a] if a in reach[b]}) for a in graph if a in reach[a]}
    assert not cycles, sorted(sorted(cycle) for cycle in cycles)


def test_no_module_is_loaded_by_name() -> None:
    by_name = sorted(name for name, path in MODULES.items()
                     if any(module.split(".")[0] == "importlib" for module, _ in _imports(path))
                     or "__import__(" in path.read_text())
    assert not by_name, by_name
