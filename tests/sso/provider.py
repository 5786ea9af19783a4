"""Start a real OpenID Connect provider on loopback for the SSO tests.

The provider is the Node program in ``tests/sso/oidc_provider/`` built on the
OpenID certified ``oidc-provider`` package (pinned to 8.8.1, which supports
Node 18 and later). It runs as a separate process on ``http://127.0.0.1:<port>``
so that mozilla-django-oidc talks to it over real HTTP, unmocked.

Usage with the Django test client (the RP runs in-process, the provider in
its own process; mozilla-django-oidc's token and userinfo calls reach the
provider over real HTTP)::

    import pytest
    import requests
    from urllib.parse import urlsplit

    from tests.sso.provider import (
        GROUPS_SCOPE, OIDCProviderUnavailable, start_oidc_provider,
    )

    CALLBACK = "http://testserver/oidc/callback/"
    accounts = [{
        "sub": "alice-1", "email": "alice@example.com", "name": "Alice Doe",
        "given_name": "Alice", "family_name": "Doe",
        "preferred_username": "alice", "groups": ["fleet-admins"],
    }]
    clients = [{
        "client_id": "fleetdeck", "client_secret": "secret",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": ["http://testserver/"],
    }]
    try:
        provider = start_oidc_provider(accounts, clients)
    except OIDCProviderUnavailable as exc:
        pytest.skip(str(exc))
    with provider, override_settings(
        OIDC_RP_CLIENT_ID="fleetdeck", OIDC_RP_CLIENT_SECRET="secret",
        OIDC_RP_SIGN_ALGO="RS256", OIDC_RP_SCOPES=GROUPS_SCOPE,
        OIDC_OP_AUTHORIZATION_ENDPOINT=provider.authorization_endpoint,
        OIDC_OP_TOKEN_ENDPOINT=provider.token_endpoint,
        OIDC_OP_USER_ENDPOINT=provider.userinfo_endpoint,
        OIDC_OP_JWKS_ENDPOINT=provider.jwks_uri,
    ):
        response = client.get("/oidc/authenticate/")  # 302 to the provider
        callback_url = provider.login(
            requests.Session(), response["Location"],
            login="alice", redirect_uri=CALLBACK,
        )
        # callback_url is CALLBACK?code=...&state=...&iss=...; it is not
        # fetched, so the RP can receive it through its own test client.
        parts = urlsplit(callback_url)
        response = client.get(f"{parts.path}?{parts.query}")  # logs in
        provider.set_groups("alice-1", ["fleet-viewers"])  # next login sees it

With a live server instead, pass the RP's ``/oidc/authenticate/`` URL as
the start URL and keep following the returned URL with the same session.

Request the scope ``openid email profile groups`` (mozilla-django-oidc:
``OIDC_RP_SCOPES``) to get ``email``, ``name``, ``given_name``,
``family_name``, ``preferred_username`` and ``groups`` in both the ID token
and the userinfo response. ID tokens are signed with RS256
(``OIDC_RP_SIGN_ALGO = "RS256"`` plus ``OIDC_OP_JWKS_ENDPOINT``). The token
endpoint accepts client_secret_post and client_secret_basic; PKCE is optional.

The login form takes ``login`` (the account's ``sub``, ``preferred_username``
or ``email``) and ``password`` (any value, unless the account has a
``password`` key). Consent is granted automatically. The provider keeps its
own SSO session cookie (``op_session``) in ``session``; a second login with the
same ``requests.Session`` therefore skips the form, as with a real provider:
``login`` copes with both, and ``clear_provider_cookies`` forces a fresh login.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
PROVIDER_SCRIPT = PROVIDER_DIR / "provider.mjs"
GROUPS_SCOPE = "openid email profile groups"
MIN_NODE_MAJOR = 18
READY_PATTERN = re.compile(r"^READY (http://127\.0\.0\.1:(\d+))$", re.MULTILINE)
PROVIDER_COOKIES = ("op_session", "op_interaction", "op_interaction_resume")


class OIDCProviderUnavailable(RuntimeError):
    """Report that Node, npm or the provider's packages cannot be used here."""


class OIDCProviderError(RuntimeError):
    """Report that the provider process failed to start or misbehaved."""


class ProviderFlowError(RuntimeError):
    """Report that a login or logout through the provider did not complete."""


def ensure_node_modules(timeout: float = 300.0) -> None:
    """Install the provider's npm packages unless they are already present.

    Raise ``OIDCProviderUnavailable`` when ``node`` or ``npm`` is missing, too
    old, or the install fails, so that callers can skip instead of error.
    """
    node = shutil.which("node")
    if node is None:
        raise OIDCProviderUnavailable("`node` is not on PATH; the OIDC test provider needs Node.js")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        raise OIDCProviderUnavailable(
            f"the OIDC test provider needs Node.js {MIN_NODE_MAJOR} or later, found {version!r}"
        )

    marker = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise OIDCProviderUnavailable("`npm` is not on PATH; cannot install the OIDC test provider")
    # Parallel test workers may all find node_modules missing; the lock makes
    # one of them install while the others wait and then reuse the result.
    with open(PROVIDER_DIR / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():
                return
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=PROVIDER_DIR,
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if result.returncode != 0 or not marker.exists():
        raise OIDCProviderUnavailable(
            f"`npm ci` failed in {PROVIDER_DIR} (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


class OIDCProvider:
    """Control a running provider process: its URLs, accounts and lifetime.

    Create it with ``start_oidc_provider``; use it as a context manager or call
    ``stop`` when done.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        issuer: str,
        workdir: Path,
        config: dict[str, Any],
    ) -> None:
        """Wrap an already started and ready provider process."""
        self.process = process
        self.issuer = issuer
        self.port = urlsplit(issuer).port
        self.workdir = workdir
        self.config_path = workdir / "config.json"
        self.log_path = workdir / "provider.log"
        self._config = config
        with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as resp:
            self.discovery: dict[str, Any] = json.load(resp)

    @property
    def authorization_endpoint(self) -> str:
        """Return the authorization endpoint URL (path ``/auth``)."""
        return self.discovery["authorization_endpoint"]

    @property
    def token_endpoint(self) -> str:
        """Return the token endpoint URL (path ``/token``)."""
        return self.discovery["token_endpoint"]

    @property
    def userinfo_endpoint(self) -> str:
        """Return the userinfo endpoint URL (path ``/me``)."""
        return self.discovery["userinfo_endpoint"]

    @property
    def jwks_uri(self) -> str:
        """Return the JWKS URL (path ``/jwks``)."""
        return self.discovery["jwks_uri"]

    @property
    def end_session_endpoint(self) -> str:
        """Return the RP-initiated logout URL (path ``/session/end``)."""
        return self.discovery["end_session_endpoint"]

    @property
    def accounts(self) -> list[dict[str, Any]]:
        """Return a copy of the accounts currently configured."""
        return json.loads(json.dumps(self._config["accounts"]))

    def set_accounts(self, accounts: Iterable[Mapping[str, Any]]) -> None:
        """Replace all accounts; the provider sees them at its next lookup."""
        self._config["accounts"] = [dict(account) for account in accounts]
        _write_config(self.config_path, self._config)

    def update_account(self, sub: str, **claims: Any) -> None:
        """Change claims (or ``password``) of the account with subject ``sub``."""
        for account in self._config["accounts"]:
            if account["sub"] == sub:
                account.update(claims)
                break
        else:
            raise KeyError(f"no account with sub {sub!r}")
        _write_config(self.config_path, self._config)

    def set_groups(self, sub: str, groups: Iterable[str]) -> None:
        """Set the groups of account ``sub`` for the tokens issued from now on."""
        self.update_account(sub, groups=list(groups))

    def login(
        self,
        session: requests.Session,
        start_url: str,
        *,
        login: str,
        password: str = "password",
        redirect_uri: str | None = None,
        cancel: bool = False,
        timeout: float = 10.0,
    ) -> str:
        """Log in through this provider; see ``login_via_provider``."""
        return login_via_provider(
            session,
            start_url,
            issuer=self.issuer,
            login=login,
            password=password,
            redirect_uri=redirect_uri,
            cancel=cancel,
            timeout=timeout,
        )

    def logout(self, session: requests.Session, end_session_url: str, *, timeout: float = 10.0) -> str:
        """Confirm an RP-initiated logout; see ``logout_via_provider``."""
        return logout_via_provider(session, end_session_url, issuer=self.issuer, timeout=timeout)

    def clear_provider_cookies(self, session: requests.Session) -> None:
        """Drop the provider's cookies from ``session`` to force a new login."""
        for cookie in list(session.cookies):
            # Signed cookies come with a companion "<name>.sig" cookie.
            if cookie.name.removesuffix(".sig") in PROVIDER_COOKIES:
                session.cookies.clear(cookie.domain, cookie.path, cookie.name)

    def read_log(self) -> str:
        """Return what the provider process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the provider process and delete its temporary files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Return the running provider."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the provider on leaving the ``with`` block."""
        self.stop()


def _write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Write the provider configuration atomically."""
    # The provider re-reads the file on every account lookup; os.replace makes
    # sure it never reads a half-written file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, path)


def start_oidc_provider(
    accounts: Iterable[Mapping[str, Any]],
    clients: Iterable[Mapping[str, Any]],
    *,
    port: int = 0,
    timeout: float = 30.0,
) -> OIDCProvider:
    """Start the provider on 127.0.0.1 and return once it serves requests.

    ``accounts`` are dicts with ``sub``, ``email``, ``name``, ``given_name``,
    ``family_name``, ``preferred_username``, ``groups`` and optionally
    ``email_verified`` (default true) and ``password``. ``clients`` are dicts
    of oidc-provider client metadata: ``client_id``, ``client_secret``,
    ``redirect_uris`` and ``post_logout_redirect_uris`` at least. With the
    default ``port=0`` the provider binds a free port itself, so no other
    process can take it between choosing and binding.

    Raise ``OIDCProviderUnavailable`` when Node.js cannot be used and
    ``OIDCProviderError`` when the process does not become ready in time.
    """
    ensure_node_modules()
    workdir = Path(tempfile.mkdtemp(prefix="fleetdeck-oidc-"))
    config = {
        "clients": [dict(client) for client in clients],
        "accounts": [dict(account) for account in accounts],
    }
    config_path = workdir / "config.json"
    log_path = workdir / "provider.log"
    _write_config(config_path, config)

    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CONFIG": str(config_path),
        "OIDC_EXIT_ON_STDIN_EOF": "1",
    }
    # Output goes to a file rather than a pipe: nobody drains a pipe after
    # start-up, and a full pipe would block the provider mid-test.
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["node", str(PROVIDER_SCRIPT)],
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    deadline = time.monotonic() + timeout
    while True:
        output = log_path.read_text(errors="replace")
        ready = READY_PATTERN.search(output)
        if ready:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            reason = (
                f"exited with code {process.returncode}"
                if process.returncode is not None
                else f"not ready after {timeout:g} s"
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            shutil.rmtree(workdir, ignore_errors=True)
            raise OIDCProviderError(f"OIDC test provider {reason}; its output:\n{output}")
        time.sleep(0.05)

    try:
        return OIDCProvider(process, ready.group(1), workdir, config)
    except Exception:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        raise


class _FormParser(HTMLParser):
    """Collect the forms of an HTML page with their fields and buttons."""

    def __init__(self) -> None:
        """Start with no forms found."""
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record form, input and button tags."""
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = {
                "id": attributes.get("id", ""),
                "action": attributes.get("action", ""),
                "method": attributes.get("method", "get").lower(),
                "fields": {},
                "buttons": [],
            }
            self.forms.append(self._current)
        elif tag in ("input", "button"):
            # Buttons may sit outside their form and point at it by id.
            owner = self._form_for(attributes.get("form"))
            if owner is None or "name" not in attributes:
                return
            if tag == "input" and attributes.get("type", "text") not in (
                "submit",
                "button",
            ):
                owner["fields"][attributes["name"]] = attributes.get("value", "")
            else:
                owner["buttons"].append((attributes["name"], attributes.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        """Close the current form."""
        if tag == "form":
            self._current = None

    def _form_for(self, form_id: str | None) -> dict[str, Any] | None:
        """Return the form a control belongs to."""
        if form_id:
            return next((form for form in self.forms if form["id"] == form_id), None)
        return self._current


def _parse_forms(html: str) -> list[dict[str, Any]]:
    """Return the forms found in ``html``."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def _origin(url: str) -> tuple[str, str]:
    """Return the scheme and host:port of ``url``."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _walk(
    session: requests.Session,
    start_url: str,
    *,
    issuer: str,
    redirect_uri: str | None,
    on_page,
    timeout: float,
    max_steps: int = 25,
) -> str:
    """Follow redirects and provider pages until the flow leaves the provider.

    ``on_page(response)`` is called for every non-redirect provider response
    and returns ``(method, url, data)`` for the next request, or None when
    that page ends the flow. Return the URL the provider finally redirects to
    (without fetching it), or the URL of the page that ended the flow.
    """
    issuer_origin = _origin(issuer)
    method, url, data = "GET", start_url, None
    visited_provider = False
    for _ in range(max_steps):
        on_provider = _origin(url) == issuer_origin
        visited_provider = visited_provider or on_provider
        response = session.request(method, url, data=data, allow_redirects=False, timeout=timeout)
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if redirect_uri is not None and target.startswith(redirect_uri):
                return target
            if redirect_uri is None and visited_provider and _origin(target) != issuer_origin:
                return target
            method, url, data = "GET", target, None
            continue
        if not on_provider:
            raise _unexpected(response)
        next_request = on_page(response)
        if next_request is None:
            return response.url
        method, url, data = next_request
    raise ProviderFlowError(f"too many steps starting from {start_url}")


def _unexpected(response: requests.Response) -> ProviderFlowError:
    """Build the error for a response the flow did not expect."""
    return ProviderFlowError(f"unexpected {response.status_code} from {response.url}:\n{response.text[:1000]}")


def login_via_provider(
    session: requests.Session,
    start_url: str,
    *,
    issuer: str,
    login: str,
    password: str = "password",
    redirect_uri: str | None = None,
    cancel: bool = False,
    timeout: float = 10.0,
) -> str:
    """Drive an authorization request through the provider's login form.

    ``start_url`` is the provider's authorization URL, or any URL that
    redirects there (e.g. the RP's ``/oidc/authenticate/`` on a live server).
    Redirects are followed one by one with ``session``; on the provider's
    login page the form is submitted with ``login`` and ``password`` (or the
    Cancel button when ``cancel`` is true, which yields
    ``error=access_denied``). Consent needs no step. When the provider
    already has an SSO session in ``session`` no form appears at all.

    Return the URL the provider redirects back to (the RP callback carrying
    ``code`` and ``state``, or ``error``), without fetching it: the first
    redirect starting with ``redirect_uri`` or, when that is None, the first
    redirect leaving the provider. Raise ``ProviderFlowError`` when the
    login is rejected or the flow ends anywhere else.
    """
    submitted = False

    def on_page(response: requests.Response):
        nonlocal submitted
        forms = _parse_forms(response.text)
        login_form = next((form for form in forms if "login" in form["fields"]), None)
        if response.status_code != HTTPStatus.OK or login_form is None:
            raise _unexpected(response)
        if submitted:
            raise ProviderFlowError(f"the provider rejected the login {login!r}")
        submitted = True
        if cancel:
            abort_form = next(form for form in forms if form["action"].endswith("/abort"))
            return "POST", urljoin(response.url, abort_form["action"]), {}
        data = {**login_form["fields"], "login": login, "password": password}
        return "POST", urljoin(response.url, login_form["action"]), data

    return _walk(
        session,
        start_url,
        issuer=issuer,
        redirect_uri=redirect_uri,
        on_page=on_page,
        timeout=timeout,
    )


def logout_via_provider(
    session: requests.Session,
    end_session_url: str,
    *,
    issuer: str,
    timeout: float = 10.0,
) -> str:
    """Confirm an RP-initiated logout at the provider's end_session endpoint.

    ``end_session_url`` is the provider's end_session URL with its query
    (``client_id``/``id_token_hint``, ``post_logout_redirect_uri``,
    ``state``), or an RP URL redirecting there. The confirmation form is
    submitted with ``logout=yes``, which ends the provider's SSO session.
    Return the URL the provider redirects to (the ``post_logout_redirect_uri``
    with ``state``), or the provider's own "signed out" page URL when no
    post-logout redirect was requested.
    """

    def on_page(response: requests.Response):
        if response.status_code != HTTPStatus.OK:
            raise _unexpected(response)
        if 'id="logout-success"' in response.text:
            return None
        forms = _parse_forms(response.text)
        logout_form = next((form for form in forms if "xsrf" in form["fields"]), None)
        if logout_form is None:
            raise _unexpected(response)
        data = {**logout_form["fields"], "logout": "yes"}
        return "POST", urljoin(response.url, logout_form["action"]), data

    return _walk(
        session,
        end_session_url,
        issuer=issuer,
        redirect_uri=None,
        on_page=on_page,
        timeout=timeout,
    )
