"""The GitHub App manifest flow end to end: setup page, state check, conversion at the fake GitHub, storage."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.github.credentials import AppCredentials, credentials_path, write_credentials
from bot.github.manifest import APP_EVENTS, APP_PERMISSIONS, is_github_login
from bot.github.setup import TOKEN_COOKIE, StateSigner, setup_routes
from bot.settings import Settings, load_settings
from tests.fakes.github import FakeGitHub

CODE = "a1b2c3d4e5"


@dataclass
class Form:
    """One <form> of a page: its method, action and input values."""

    method: str
    action: str
    inputs: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("method", "get").lower(), values.get("action", "")))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].inputs[values["name"]] = values.get("value", "")


def forms_of(page: str) -> list[Form]:
    """The forms of an HTML page, with entity-decoded attribute values (as a browser submits them)."""
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def manifest_form(page: str) -> tuple[str, dict[str, Any]]:
    """The one form that POSTs a manifest: (action, manifest)."""
    found = [form for form in forms_of(page) if "manifest" in form.inputs]
    assert len(found) == 1, found
    assert found[0].method == "post"
    return found[0].action, json.loads(found[0].inputs["manifest"])


def state_of(action: str) -> str:
    """The `state` query value of a registration URL."""
    (state,) = parse_qs(urlsplit(action).query)["state"]
    return state


SETUP_TOKEN = "operator-setup-token"


def make_client(settings: Settings, base_url: str = "http://testserver", **kwargs: Any) -> TestClient:
    """A client for an app with only the setup routes, holding the setup token's cookie as the operator would."""
    kwargs.setdefault("environ", {})
    kwargs.setdefault("token", SETUP_TOKEN)
    client = TestClient(Starlette(routes=setup_routes(settings, **kwargs)), base_url=base_url)
    client.cookies.set(TOKEN_COOKIE, SETUP_TOKEN)
    return client


@pytest.fixture
def unconfigured(fake_github: FakeGitHub) -> Settings:
    """Settings without App credentials, talking to the fake GitHub."""
    settings = load_settings(github_api_url=fake_github.url)
    assert settings.missing_app_settings
    return settings


@pytest.fixture
def client(unconfigured: Settings) -> Iterator[TestClient]:
    """The setup app on a public-looking host."""
    with make_client(unconfigured, base_url="https://review.example.com") as test_client:
        yield test_client


def register(client: TestClient, fake: FakeGitHub, result: Mapping[str, Any]) -> Any:
    """Walk the personal-account flow: setup page, GitHub's redirect back with a fresh code."""
    action, _ = manifest_form(client.get("/").text)
    fake.add_manifest_code(CODE, result=result)
    return client.get("/setup/callback", params={"code": CODE, "state": state_of(action)})


def test_page_explains_permissions_and_events(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for name, access in APP_PERMISSIONS.items():
        assert f"<code>{name}</code>: {access}" in page.text
    for event in APP_EVENTS:
        assert f"<code>{event}</code>" in page.text


def test_personal_manifest_fields(client: TestClient, unconfigured: Settings) -> None:
    action, manifest = manifest_form(client.get("/").text)
    assert action.startswith(f"{unconfigured.web_url}/settings/apps/new?state=")
    assert manifest["name"].startswith("senior-review-")
    assert manifest["url"] == "https://review.example.com"
    assert manifest["hook_attributes"]["url"] == "https://review.example.com/webhook"
    assert manifest["hook_attributes"]["active"] is True
    assert manifest["redirect_url"] == "https://review.example.com/setup/callback"
    assert manifest["public"] is False
    assert manifest["default_permissions"] == dict(APP_PERMISSIONS)
    assert manifest["default_events"] == list(APP_EVENTS)


def test_names_and_states_differ_per_visit(client: TestClient) -> None:
    first_action, first = manifest_form(client.get("/").text)
    second_action, second = manifest_form(client.get("/").text)
    assert first["name"] != second["name"]
    assert state_of(first_action) != state_of(second_action)


def test_public_url_setting_wins_for_webhooks(fake_github: FakeGitHub) -> None:
    settings = load_settings(github_api_url=fake_github.url, public_url="https://bot.example.org/")
    with make_client(settings, base_url="http://127.0.0.1:8000") as local:
        page = local.get("/").text
    _, manifest = manifest_form(page)
    assert manifest["hook_attributes"]["url"] == "https://bot.example.org/webhook"
    assert manifest["url"] == "https://bot.example.org"
    # The browser comes back to the server that holds the state: the one it is talking to.
    assert manifest["redirect_url"] == "http://127.0.0.1:8000/setup/callback"
    assert "smee.io" not in page


@pytest.mark.parametrize("base", ["http://localhost:8000", "http://127.0.0.1:8000", "http://192.168.1.20:8000"])
def test_unreachable_webhook_host_warns_with_tunnel_pointer(unconfigured: Settings, base: str) -> None:
    with make_client(unconfigured, base_url=base) as local:
        page = local.get("/").text
    _, manifest = manifest_form(page)
    assert manifest["hook_attributes"]["url"] == f"{base}/webhook"
    assert 'class="warn"' in page
    assert "smee.io" in page
    assert "PUBLIC_URL" in page


def test_public_host_has_no_warning(client: TestClient) -> None:
    assert 'class="warn"' not in client.get("/").text


def test_fly_app_name_gives_the_public_https_address(unconfigured: Settings) -> None:
    with make_client(unconfigured, base_url="http://senior.fly.dev", environ={"FLY_APP_NAME": "senior"}) as fly:
        _, manifest = manifest_form(fly.get("/").text)
    assert manifest["hook_attributes"]["url"] == "https://senior.fly.dev/webhook"
    assert manifest["redirect_url"] == "https://senior.fly.dev/setup/callback"


def test_ghes_registration_urls(fake_github: FakeGitHub) -> None:
    settings = load_settings(github_api_url="https://ghe.example.com/api/v3")
    with make_client(settings, base_url="https://review.example.com") as ghes:
        personal, _ = manifest_form(ghes.get("/").text)
        org, _ = manifest_form(ghes.get("/setup/organization", params={"org": "platform"}).text)
    assert personal.startswith("https://ghe.example.com/settings/apps/new?state=")
    assert org.startswith("https://ghe.example.com/organizations/platform/settings/apps/new?state=")


def test_organization_flow(client: TestClient, unconfigured: Settings) -> None:
    org_forms = [form for form in forms_of(client.get("/").text) if "org" in form.inputs]
    assert len(org_forms) == 1 and org_forms[0].method == "get"
    assert urlsplit(urljoin("https://review.example.com/", org_forms[0].action)).path == "/setup/organization"
    page = client.get("/setup/organization", params={"org": "acme-corp"})
    assert page.status_code == 200
    action, manifest = manifest_form(page.text)
    assert action.startswith(f"{unconfigured.web_url}/organizations/acme-corp/settings/apps/new?state=")
    assert manifest["hook_attributes"]["url"] == "https://review.example.com/webhook"
    assert manifest["public"] is False


@pytest.mark.parametrize("org", ["", "-acme", "acme-", "ac--me", "a" * 40, "acme/evil", "acme corp", '"><script>x'])
def test_invalid_organization_names_are_refused(client: TestClient, org: str) -> None:
    page = client.get("/setup/organization", params={"org": org})
    assert page.status_code == 400
    assert "/organizations/" not in page.text
    assert "<script>" not in page.text
    (retry,) = [form for form in forms_of(page.text) if "org" in form.inputs]
    assert urlsplit(urljoin(str(page.url), retry.action)).path == "/setup/organization"


@pytest.mark.parametrize(("login", "valid"), [("a", True), ("a-b-c", True), ("A1" * 19 + "x", True), ("_x", False)])
def test_github_login_rules(login: str, valid: bool) -> None:
    assert is_github_login(login) is valid


def test_full_flow_stores_credentials_picked_up_by_next_start(
    client: TestClient, fake_github: FakeGitHub, rsa_private_key_pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = {"id": 4242, "slug": "senior-review-x", "webhook_secret": "f" * 40, "pem": rsa_private_key_pem,
              "html_url": "https://github.com/apps/senior-review-x"}
    page = register(client, fake_github, result)

    assert page.status_code == 200, page.text
    assert fake_github.requests_to("POST", rf"^/app-manifests/{CODE}/conversions$")
    links = [urlsplit(part.split('"', 1)[0]) for part in page.text.split('href="')[1:]]
    assert urlsplit("https://github.com/apps/senior-review-x/installations/new") in links
    assert "restart" in page.text.lower()
    for secret in ("f" * 40, "PRIVATE KEY"):
        assert secret not in page.text
        assert secret not in caplog.text

    settings = load_settings()  # the next start: same DATA_DIR, empty environment
    path = credentials_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.github_app_id == 4242
    assert settings.private_key_pem is not None
    assert settings.private_key_pem.strip() == rsa_private_key_pem.strip()
    assert settings.github_webhook_secret is not None
    assert settings.github_webhook_secret.get_secret_value() == "f" * 40
    assert settings.missing_app_settings == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_setup_routes_are_gone_on_the_next_start(
    client: TestClient, fake_github: FakeGitHub, unconfigured: Settings, rsa_private_key_pem: str
) -> None:
    from bot.wiring import build_app

    before = {getattr(route, "path", None) for route in build_app(unconfigured).routes}
    assert {"/", "/setup/organization", "/setup/callback"} <= before
    assert register(client, fake_github, {"pem": rsa_private_key_pem}).status_code == 200
    configured = load_settings(github_api_url=fake_github.url)
    assert setup_routes(configured) == []
    after = {getattr(route, "path", None) for route in build_app(configured).routes}
    assert after.isdisjoint({"/", "/setup/organization", "/setup/callback"})
    assert "/webhook" in after


def test_routes_refuse_once_credentials_are_stored(
    client: TestClient, fake_github: FakeGitHub, rsa_private_key_pem: str
) -> None:
    spare_action, _ = manifest_form(client.get("/").text)  # a second tab, opened before the first finished
    assert register(client, fake_github, {"pem": rsa_private_key_pem}).status_code == 200
    stored = credentials_path(load_settings()).read_bytes()
    # The running server refuses (no second App, no takeover); a restarted one has no setup routes at all.
    with make_client(load_settings(github_api_url=fake_github.url)) as restarted:
        for test_client, status in ((client, 409), (restarted, 404)):
            assert test_client.get("/").status_code == status
            assert test_client.get("/setup/organization", params={"org": "acme"}).status_code == status
            fake_github.add_manifest_code("other", result={"pem": rsa_private_key_pem})
            page = test_client.get("/setup/callback", params={"code": "other", "state": state_of(spare_action)})
            assert page.status_code == status
    assert not fake_github.requests_to("POST", r"^/app-manifests/other/conversions$")
    assert credentials_path(load_settings()).read_bytes() == stored


@pytest.mark.parametrize("variable", ["GITHUB_APP_ID", "GITHUB_WEBHOOK_SECRET"])
def test_routes_refuse_when_the_environment_has_credentials(
    fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "12")
    with make_client(load_settings(github_api_url=fake_github.url)) as configured:
        assert configured.get("/").status_code == 409
        assert configured.get("/setup/callback", params={"code": CODE, "state": "x"}).status_code == 409


def test_wrong_or_missing_state_is_refused(client: TestClient, fake_github: FakeGitHub, unconfigured: Settings) -> None:
    action, _ = manifest_form(client.get("/").text)
    good = state_of(action)
    foreign = StateSigner().issue()  # well-formed, signed by another server
    fake_github.add_manifest_code(CODE)
    for params in ({"code": CODE}, {"code": CODE, "state": ""}, {"code": CODE, "state": good + "x"},
                   {"code": CODE, "state": foreign}, {"code": CODE, "state": "1.2.3"},
                   {"code": CODE, "state": good.rpartition(".")[0] + ".é"}):
        page = client.get("/setup/callback", params=params)
        assert page.status_code == 400, params
    assert not fake_github.requests_to("POST", r"^/app-manifests/")
    assert not credentials_path(unconfigured).exists()


def test_expired_state_is_refused(unconfigured: Settings, fake_github: FakeGitHub) -> None:
    now = [1_000_000.0]
    signer = StateSigner(clock=lambda: now[0])
    with make_client(unconfigured, signer=signer) as test_client:
        action, _ = manifest_form(test_client.get("/").text)
        now[0] += 3601
        fake_github.add_manifest_code(CODE)
        page = test_client.get("/setup/callback", params={"code": CODE, "state": state_of(action)})
    assert page.status_code == 400
    assert not fake_github.requests_to("POST", r"^/app-manifests/")


def test_expired_or_used_code_stores_nothing(
    client: TestClient, fake_github: FakeGitHub, unconfigured: Settings
) -> None:
    action, _ = manifest_form(client.get("/").text)
    page = client.get("/setup/callback", params={"code": "never-issued", "state": state_of(action)})
    assert page.status_code == 502
    assert "one hour" in page.text
    assert not credentials_path(unconfigured).exists()


@pytest.mark.parametrize(
    "bad",
    [{"slug": "x\nGITHUB_APP_ID=1"}, {"html_url": "javascript:alert(1)"}, {"pem": "not a key"},
     {"pem": "-----BEGIN RSA PRIVATE KEY-----\nabc#def\n-----END RSA PRIVATE KEY-----"},
     {"webhook_secret": "a b"}, {"id": "4242"}],
)
def test_unexpected_conversion_answers_store_nothing(
    client: TestClient, fake_github: FakeGitHub, unconfigured: Settings, rsa_private_key_pem: str,
    bad: dict[str, Any],
) -> None:
    page = register(client, fake_github, {"pem": rsa_private_key_pem, **bad})
    assert page.status_code == 502
    assert not credentials_path(unconfigured).exists()
    assert "javascript:" not in page.text


def test_malformed_code_is_not_sent_to_github(client: TestClient, fake_github: FakeGitHub) -> None:
    action, _ = manifest_form(client.get("/").text)
    page = client.get("/setup/callback", params={"code": "../../user", "state": state_of(action)})
    assert page.status_code == 400
    assert not fake_github.requests_to("POST", r"")


def test_on_fly_the_page_shows_the_secrets_command_without_secrets(
    unconfigured: Settings, fake_github: FakeGitHub, rsa_private_key_pem: str
) -> None:
    with make_client(unconfigured, base_url="https://senior.fly.dev", environ={"FLY_APP_NAME": "senior"}) as fly:
        page = register(fly, fake_github, {"pem": rsa_private_key_pem, "webhook_secret": "e" * 40})
    assert page.status_code == 200
    path = credentials_path(unconfigured)
    command = f"fly ssh console --app senior --command &#x27;cat {path}&#x27; | fly secrets import --app senior"
    assert command in page.text
    assert "e" * 40 not in page.text
    assert "PRIVATE KEY" not in page.text
    assert path.exists()


def test_write_credentials_never_overwrites(tmp_path: Path, rsa_private_key_pem: str) -> None:
    path = tmp_path / "data" / "credentials.env"
    first = AppCredentials(1, "one", "https://github.com/apps/one", None, rsa_private_key_pem, "s1")
    write_credentials(path, first)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        second = AppCredentials(2, "two", "https://github.com/apps/two", None, rsa_private_key_pem, "s2")
        write_credentials(path, second)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials.env"]
    assert "s1" not in repr(first) and "PRIVATE" not in repr(first)


def test_pages_escape_and_forbid_framing(client: TestClient) -> None:
    page = client.get("/setup/organization", params={"org": "<b>bold</b>"})
    assert "<b>bold</b>" not in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_without_the_setup_token_nobody_can_start_or_finish_a_registration(unconfigured: Settings) -> None:
    stranger = make_client(unconfigured)
    stranger.cookies.clear()
    assert stranger.get("/").status_code == 403
    assert stranger.get("/setup/organization", params={"org": "acme"}).status_code == 403
    assert stranger.get("/setup/callback", params={"code": CODE, "state": "x"}).status_code == 403
    operator = make_client(unconfigured)
    operator.cookies.clear()
    first = operator.get("/", params={"token": SETUP_TOKEN})
    assert first.status_code == 200 and TOKEN_COOKIE in first.headers.get("set-cookie", "")
    assert operator.get("/").status_code == 200  # the cookie carries the token from then on
    assert stranger.get("/", params={"token": "guess"}).status_code == 403
