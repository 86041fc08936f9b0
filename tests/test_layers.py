"""The layer rules of `bot/__init__.py`: each import-linter contract can fail, and the broad catches in the code are
exactly the edges the rule lists."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bot

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
# One stray import per contract, each breaking that contract and no other: (contract id, file, line added).
STRAYS = [
    ("core", "bot/render.py", "import bot.store.base"),  # the core reaching an adapter
    ("core", "bot/domain.py", "from bot import pipeline"),  # ... or an adapter-level module
    ("githubkit", "bot/stray.py", "import githubkit"),
    ("anthropic", "bot/stray.py", "from anthropic import AsyncAnthropic"),
    ("unidiff", "bot/stray.py", "import unidiff"),
    ("acyclic", "bot/command_jobs.py", "from bot import review"),  # review imports command_jobs
    ("acyclic", "bot/store/types.py", "from bot.store import base"),  # base imports types
]


def _lint(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--contract", contract], cwd=root, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of bot/ and the contracts, checked to keep every contract as the real tree does."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "bot", root / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    return root


def test_every_contract_is_tested(clean_copy: Path) -> None:
    assert {c["id"] for c in CONTRACTS} == {contract for contract, _, _ in STRAYS}


@pytest.mark.parametrize(("contract", "path", "line"), STRAYS)
def test_a_stray_import_breaks_its_contract(clean_copy: Path, tmp_path: Path, contract: str, path: str,
                                            line: str) -> None:
    shutil.copytree(clean_copy, tmp_path, dirs_exist_ok=True)
    target = tmp_path / path
    target.write_text((target.read_text() if target.exists() else "") + f"\n{line}  # noqa\n")
    broken = _lint(tmp_path, contract)
    assert broken.returncode == 1 and "BROKEN" in broken.stdout, broken.stdout[-3000:]


# -- broad catches ------------------------------------------------------------------------------------------------

BROAD = {"Exception", "BaseException"}


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"BaseException"}  # a bare `except:`
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(e) for e in node.elts))
    return {node.id} if isinstance(node, ast.Name) else {node.attr} if isinstance(node, ast.Attribute) else set()


def _reraises(handler: ast.ExceptHandler) -> bool:
    last = handler.body[-1]
    return isinstance(last, ast.Raise) and last.exc is None


def broad_catches(source: str) -> list[tuple[str, int]]:
    """(enclosing Class.function, line) of each broad catch: `except Exception`/`BaseException` or bare `except`
    that does not end by re-raising, and `contextlib.suppress` of either."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                inner = f"{where}.{child.name}" if where else child.name
            if isinstance(child, ast.ExceptHandler) and _names(child.type) & BROAD and not _reraises(child):
                found.append((where, child.lineno))
            if (isinstance(child, ast.Call) and _names(child.func) == {"suppress"}
                    and set().union(*(_names(a) for a in child.args)) & BROAD):
                found.append((where, child.lineno))
            visit(child, inner)

    visit(ast.parse(source), "")
    return found


def test_the_checker_finds_what_it_must() -> None:
    source = (
        "import contextlib\n"
        "def a():\n    try: pass\n    except Exception: pass\n"
        "class B:\n    async def c(self):\n        with contextlib.suppress(OSError, BaseException): pass\n"
        "def d():\n    try: pass\n    except: log()\n"
        "def e():\n    try: pass\n    except BaseException:\n        cleanup()\n        raise\n"  # re-raises: fine
        "def f():\n    try: pass\n    except (ValueError, KeyError): pass\n"  # precise: fine
    )
    assert [where for where, _ in broad_catches(source)] == ["a", "B.c", "d"]


def test_broad_catches_are_exactly_the_edges_the_rule_lists() -> None:
    in_code = set()
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        in_code |= {f"{module}.{where}" for where, _ in broad_catches(path.read_text())}
    rule = (bot.__doc__ or "").split("Broad catches", 1)[1]
    listed = set(re.findall(r"`(bot\.[\w.]+)`", rule))
    assert in_code == listed, f"in the code but not the rule: {in_code - listed}; listed but gone: {listed - in_code}"


def test_the_rule_names_the_contract_core() -> None:
    [core] = [c for c in CONTRACTS if c["id"] == "core"]
    rule = (bot.__doc__ or "").split("- The adapters", 1)[0]
    assert set(re.findall(r"`(bot\.[\w.]+)`", rule)) == set(core["source_modules"])

