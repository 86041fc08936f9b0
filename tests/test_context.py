"""bot.context: test files by convention, enclosing definitions, and what of a file is shown as context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.context import (
    MAX_DIRS,
    MAX_SCOPE_LINES,
    WHOLE_FILE_LINES,
    RelatedTest,
    RepoView,
    context_ranges,
    enclosing,
    is_test_path,
    module_of_test,
    related_tests,
    wanted_dirs,
)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("tests/test_users.py", "users"),
        ("app/users_test.py", "users"),
        ("pkg/store/users_test.go", "users"),
        ("src/users.test.ts", "users"),
        ("src/__tests__/users.spec.tsx", "users"),
        ("src/test/java/com/x/UsersTest.java", "Users"),
        ("spec/models/user_spec.rb", "user"),
        ("app/users.py", None),
        ("app/testing.py", None),
        ("src/contest.ts", None),
        ("test_.py", None),
    ],
)
def test_test_target_follows_naming_conventions(path: str, target: str | None) -> None:
    assert module_of_test(path) == target


def test_files_in_test_directories_are_tests_even_without_a_test_name() -> None:
    assert is_test_path("tests/conftest.py")
    assert is_test_path("src/__tests__/helpers.ts")
    assert not is_test_path("app/api.py")


def test_wanted_dirs_cover_the_conventions_and_skip_test_files() -> None:
    dirs = wanted_dirs(["app/api/users.py", "tests/test_users.py", "src/main/java/com/x/Users.java"])
    for expected in ("app/api", "app/api/tests", "tests", "tests/app/api", "tests/api", "test", "spec",
                     "src/test/java/com/x"):
        assert expected in dirs
    assert not any(d.startswith("tests/tests") for d in dirs)  # the test file itself asked for nothing
    assert len(dirs) == len(set(dirs))


def test_tests_for_names_repository_tests_and_marks_those_this_change_touches() -> None:
    view = RepoView(listings={"tests": ("test_users.py", "test_orders.py", "conftest.py"), "app": ("users.py",)})
    found = related_tests("app/users.py", view.paths(), ["app/users.py", "tests/api/test_users.py"])
    assert found == [RelatedTest("tests/api/test_users.py", True), RelatedTest("tests/test_users.py", False)]
    assert related_tests("app/payments.py", view.paths(), []) == []


PY = """\
import os


class Accounts:
    def __init__(self, db):
        self.db = db

    def transfer(self, src, dst, amount):
        if amount <= 0:
            raise ValueError("amount")
        self.db.debit(src, amount)
        self.db.credit(dst, amount)


def helper():
    return 1
"""


def test_enclosing_python_takes_the_outermost_definition_that_fits() -> None:
    lines = PY.splitlines()
    scope = enclosing(lines, 11, 11, "bank.py")  # the debit line
    assert scope is not None
    assert (scope.start, scope.end) == (4, 12)  # the whole class, not just the method
    assert enclosing(lines, 1, 1, "bank.py") is None  # module level
    top = enclosing(lines, 16, 16, "bank.py")
    assert top is not None and (top.start, top.end) == (15, 16)


GO = """\
package bank

func Transfer(db *DB, src, dst string, amount int) error {
\tif amount <= 0 {
\t\treturn ErrAmount
\t}
\tdb.Debit(src, amount)
\treturn db.Credit(dst, amount)
}

func Other() {}
"""


def test_enclosing_brace_language_uses_brace_balance() -> None:
    scope = enclosing(GO.splitlines(), 7, 7, "bank.go")
    assert scope is not None and (scope.start, scope.end) == (3, 9)


def test_a_long_definition_is_shown_around_the_hunk_only() -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_SCOPE_LINES + 50))
    lines = ["def big():", *body.splitlines()]
    scope = enclosing(lines, 100, 100, "big.py")
    assert scope is not None
    assert scope.start > 1 and scope.end < len(lines) and scope.start <= 100 <= scope.end
    assert "long definition" in scope.label


def test_small_files_are_whole_and_large_ones_show_merged_enclosing_scopes() -> None:
    assert [(s.start, s.end) for s in context_ranges(PY, [(11, 11)], "bank.py")] == [(1, 16)]
    filler = "\n".join(f"CONST_{n} = {n}" for n in range(WHOLE_FILE_LINES))
    text = PY + filler + "\n"
    scopes = context_ranges(text, [(11, 11), (9, 9), (16, 16)], "bank.py")
    assert [(s.start, s.end) for s in scopes] == [(4, 16)]  # overlapping and nearby scopes merged
    assert context_ranges("", [(1, 1)], "x.py") == []


@given(st.lists(st.sampled_from(["def f():", "    x = 1", "", "class C:", "  }", "{", "func g() {", "}"]),
                min_size=1, max_size=60),
       st.integers(1, 60))
def test_enclosing_always_contains_the_range_or_is_none(lines: list[str], at: int) -> None:
    at = min(at, len(lines))
    scope = enclosing(lines, at, at, "x.py")
    if scope is not None:
        assert 1 <= scope.start <= at <= scope.end <= len(lines)
    scope = enclosing(lines, at, at, "x.go")
    if scope is not None:
        assert 1 <= scope.start <= at <= scope.end <= len(lines)


def test_wanted_dirs_stop_reading_paths_once_they_have_enough() -> None:
    read = 0

    def paths() -> Iterator[str]:
        nonlocal read
        for i in range(100_000):
            read += 1
            yield f"pkg{i}/deep/er/module_{i}.py"

    dirs = wanted_dirs(paths())
    assert len(dirs) == MAX_DIRS
    assert read < 20  # each path asks for several directories: a 3,000-file pull request is not walked whole
