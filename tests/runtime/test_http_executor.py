"""The HTTP tool executor against real servers on loopback (allowed with FLEETDECK_ALLOWED_INTERNAL_HOSTS)."""

from __future__ import annotations

import datetime
import json
import ssl
import time
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.runtime.executors.base import ToolCallContext, ToolError
from apps.runtime.executors.http import execute, open_pinned_connection
from apps.tools.specs import tool_spec_validate
from tests.runtime.loopback import loopback_server

SECRET = "s3cr3t"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    return settings


@pytest.fixture
def ctx():
    return ToolCallContext(
        team_id=1, run_id=1, step_index=3, idempotency_key="1:3", secret=lambda name: {"crm_token": SECRET}[name]
    )


def http_tool(url: str, *, properties: dict | None = None, secrets: list | None = None, **config) -> dict:
    """Return a validated spec of kind http, exactly as a published tool version holds it."""
    return tool_spec_validate(
        {
            "description": "Call the CRM.",
            "kind": "http",
            "parameters": {"type": "object", "properties": properties or {}},
            "config": {"url": url, **config},
            "secrets": secrets or [],
        }
    )


def echo(request):
    request.reply(200, {"method": request.method, "path": request.path, "body": request.body.decode()})


STRINGS = {"type": "string"}


def test_get_fills_path_and_query_with_encoded_values(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(
            server.url + "/customers/{id}/orders?status={status}",
            properties={"id": STRINGS, "status": STRINGS, "q": STRINGS, "limit": {"type": "integer"}},
            query={"q": "{q}", "limit": "{limit}"},
        )
        result = execute(spec=spec, arguments={"id": "C 42", "status": "open&x=1", "q": "a b/c?", "limit": 5}, ctx=ctx)
    assert result["status"] == 200
    assert result["content_type"] == "application/json"
    assert result["body"]["path"] == "/customers/C%2042/orders?status=open%26x%3D1&q=a%20b%2Fc%3F&limit=5"
    assert server.requests[0].headers["Host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "value, segment",
    [
        ("../admin", "..%2Fadmin"),
        ("x/../../y", "x%2F..%2F..%2Fy"),
        ("evil.com@", "evil.com%40"),
        ("@evil.com", "%40evil.com"),
        ("?admin=1#x", "%3Fadmin%3D1%23x"),
        ("%2e%2e", "%252e%252e"),
        ("\\..\\admin", "%5C..%5Cadmin"),
    ],
)
def test_arguments_cannot_leave_their_path_segment_or_change_host(ctx, value, segment):
    with loopback_server(echo) as server:
        spec = http_tool(server.url + "/customers/{id}", properties={"id": STRINGS})
        result = execute(spec=spec, arguments={"id": value}, ctx=ctx)
    assert result["body"]["path"] == f"/customers/{segment}"
    assert len(server.requests) == 1  # it reached this very server


@pytest.mark.parametrize("value", ["..", "."])
def test_dot_segments_from_arguments_are_refused(ctx, value):
    with loopback_server(echo) as server:
        spec = http_tool(server.url + "/customers/{id}", properties={"id": STRINGS})
        with pytest.raises(ToolError) as refused:
            execute(spec=spec, arguments={"id": value}, ctx=ctx)
    assert refused.value.code == "invalid_arguments"
    assert server.requests == []


def test_optional_query_argument_left_out_is_not_sent(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(
            server.url + "/search",
            properties={"q": STRINGS, "page": {"type": "integer"}},
            query={"q": "{q}", "page": "{page}"},
        )
        result = execute(spec=spec, arguments={"q": "refund"}, ctx=ctx)
    assert result["body"]["path"] == "/search?q=refund"


def test_post_sends_arguments_as_json_with_idempotency_key(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(
            server.url + "/tickets", method="POST", properties={"title": STRINGS, "priority": {"type": "integer"}}
        )
        result = execute(spec=spec, arguments={"title": "Refund", "priority": 2}, ctx=ctx)
    request = server.requests[0]
    assert request.method == "POST"
    assert request.json() == {"title": "Refund", "priority": 2}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "1:3"
    assert result["body"]["method"] == "POST"


def test_body_template_keeps_json_types_and_fills_text(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(
            server.url + "/orders/{id}",
            method="PATCH",
            properties={"id": {"type": "integer"}, "tags": {"type": "array"}, "name": STRINGS, "note": STRINGS},
            body={"order": {"id": "{id}", "tags": "{tags}"}, "summary": "Order {id} for {name}", "note": "{note}"},
        )
        execute(spec=spec, arguments={"id": 7, "tags": ["vip", "late"], "name": "Ada"}, ctx=ctx)
    assert server.requests[0].json() == {"order": {"id": 7, "tags": ["vip", "late"]}, "summary": "Order 7 for Ada"}
    assert server.requests[0].headers["Idempotency-Key"] == "1:3"


def test_reads_send_no_idempotency_key_and_no_body(ctx):
    with loopback_server(echo) as server:
        execute(spec=http_tool(server.url + "/x"), arguments={}, ctx=ctx)
    assert "Idempotency-Key" not in server.requests[0].headers
    assert server.requests[0].body == b""


def test_delete_sends_idempotency_key(ctx):
    with loopback_server(echo) as server:
        execute(
            spec=http_tool(server.url + "/x/{id}", method="DELETE", properties={"id": STRINGS}),
            arguments={"id": "9"},
            ctx=ctx,
        )
    assert server.requests[0].method == "DELETE"
    assert server.requests[0].headers["Idempotency-Key"] == "1:3"


def crm_tool(url: str, **config) -> dict:
    return http_tool(url, headers={"Authorization": "Bearer {{secrets.crm_token}}"}, secrets=["crm_token"], **config)


def test_secret_header_reaches_the_server_but_not_the_result(ctx):
    def handler(request):  # an API that echoes what it was sent, as some do
        request.reply(200, {"you_sent": dict(request.headers)})

    with loopback_server(handler) as server:
        result = execute(spec=crm_tool(server.url + "/me"), arguments={}, ctx=ctx)
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(result)
    assert result["body"]["you_sent"]["Authorization"] == "Bearer [secret]"


def test_secret_is_not_in_the_error_of_a_failed_call(ctx):
    def handler(request):
        request.reply(500, f"Internal error while checking {request.headers['Authorization']}")

    with loopback_server(handler) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=crm_tool(server.url + "/me"), arguments={}, ctx=ctx)
    error = failed.value
    assert error.code == "http_status"
    assert error.retryable is False
    assert "HTTP 500" in error.message
    assert "Internal error while checking Bearer [secret]" in error.message
    assert SECRET not in error.message
    assert SECRET not in str(error)
    assert error.__cause__ is None and error.__context__ is None  # the unscrubbed original is not chained


@pytest.mark.parametrize(
    "status, retryable", [(404, False), (400, False), (429, True), (502, True), (503, True), (504, True)]
)
def test_non_2xx_answers_are_errors_with_an_excerpt(ctx, status, retryable):
    with loopback_server(lambda request: request.reply(status, {"error": "x" * 2000})) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/x"), arguments={}, ctx=ctx)
    assert failed.value.code == "http_status"
    assert failed.value.retryable is retryable
    assert f"HTTP {status}" in failed.value.message
    assert '{"error": "xxx' in failed.value.message
    assert len(failed.value.message) < 1000  # the body is clipped


def test_response_over_the_limit_is_refused(ctx):
    with loopback_server(lambda request: request.reply(200, "x" * 5000)) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/big", max_response_bytes=1000), arguments={}, ctx=ctx)
    assert failed.value.code == "response_too_large"
    assert "1000 bytes" in failed.value.message
    assert "config.max_response_bytes" in failed.value.message


def test_response_over_the_limit_without_length_is_cut_off_while_streaming(ctx):
    def handler(request):  # no Content-Length: the body runs until the server closes
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            request.wfile.write(b"y" * 1000)

    with loopback_server(handler) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/stream", max_response_bytes=2048), arguments={}, ctx=ctx)
    assert failed.value.code == "response_too_large"


def test_response_at_the_limit_is_returned(ctx):
    with loopback_server(lambda request: request.reply(200, "z" * 1000)) as server:
        result = execute(spec=http_tool(server.url + "/", max_response_bytes=1000), arguments={}, ctx=ctx)
    assert result["body"] == "z" * 1000


def test_slow_server_times_out_quickly_with_a_clear_error(ctx):
    def handler(request):
        time.sleep(3)
        request.reply(200, "late")

    with loopback_server(handler) as server:
        started = time.monotonic()
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/slow", timeout_s=1), arguments={}, ctx=ctx)
        elapsed = time.monotonic() - started
    assert elapsed < 2
    assert failed.value.code == "timeout"
    assert failed.value.retryable is True
    assert "timeout_s is 1" in failed.value.message


def test_slow_body_times_out_on_the_whole_call_not_per_read(ctx):
    def handler(request):  # a trickle: every read succeeds, the whole never arrives in time
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        for _ in range(40):
            request.wfile.write(b"a")
            request.wfile.flush()
            time.sleep(0.1)

    with loopback_server(handler) as server:
        started = time.monotonic()
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/trickle", timeout_s=1), arguments={}, ctx=ctx)
    assert time.monotonic() - started < 2
    assert failed.value.code == "timeout"


def test_run_deadline_shortens_the_timeout(ctx):
    def handler(request):
        time.sleep(3)
        request.reply(200, "late")

    ctx.deadline = time.monotonic() + 0.5
    with loopback_server(handler) as server:
        started = time.monotonic()
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/slow", timeout_s=30), arguments={}, ctx=ctx)
    assert time.monotonic() - started < 1.5
    assert "run's remaining time" in failed.value.message


def test_redirect_on_the_allowed_host_is_followed(ctx):
    def handler(request):
        if request.path == "/old":
            request.reply(301, "", headers={"Location": "/new?x=1"})
        else:
            request.reply(200, {"at": request.path})

    with loopback_server(handler) as server:
        result = execute(spec=http_tool(server.url + "/old"), arguments={}, ctx=ctx)
    assert result["body"] == {"at": "/new?x=1"}
    assert [r.path for r in server.requests] == ["/old", "/new?x=1"]


def test_redirect_to_metadata_address_is_refused(ctx):
    def handler(request):
        request.reply(302, "", headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"})

    with loopback_server(handler) as server:
        with pytest.raises(ToolError) as refused:
            execute(spec=http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert refused.value.code == "ssrf_refused"
    assert "169.254.169.254" in refused.value.message


def test_redirect_to_another_origin_does_not_carry_the_secret(ctx):
    with loopback_server(echo) as other:

        def handler(request):
            request.reply(307, "", headers={"Location": other.url + "/landing"})

        with loopback_server(handler) as server:
            execute(spec=crm_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert "Authorization" not in other.requests[0].headers


def test_see_other_after_post_continues_with_get(ctx):
    def handler(request):
        if request.path == "/tickets":
            request.reply(303, "", headers={"Location": "/tickets/1"})
        else:
            echo(request)

    with loopback_server(handler) as server:
        result = execute(spec=http_tool(server.url + "/tickets", method="POST"), arguments={}, ctx=ctx)
    assert result["body"] == {"method": "GET", "path": "/tickets/1", "body": ""}


def test_endless_redirects_stop_after_five(ctx):
    with loopback_server(lambda request: request.reply(302, "", headers={"Location": "/again"})) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert failed.value.code == "too_many_redirects"
    assert len(server.requests) == 6


def test_text_body_is_returned_as_text(ctx):
    with loopback_server(
        lambda request: request.reply(200, "<p>ok</p>", content_type="text/html; charset=utf-8")
    ) as server:
        result = execute(spec=http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert result == {"status": 200, "content_type": "text/html; charset=utf-8", "body": "<p>ok</p>"}


def test_invalid_json_body_is_returned_as_text(ctx):
    with loopback_server(lambda request: request.reply(200, "{not json", content_type="application/json")) as server:
        result = execute(spec=http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert result["body"] == "{not json"


def test_internal_host_is_refused_unless_allowed(ctx, settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    with loopback_server(echo) as server:
        with pytest.raises(ToolError) as refused:
            execute(spec=http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert refused.value.code == "ssrf_refused"
    assert server.requests == []


def test_connection_refused_is_a_retryable_error(ctx):
    with loopback_server(echo) as server:
        url = server.url + "/"
    with pytest.raises(ToolError) as failed:
        execute(spec=http_tool(url), arguments={}, ctx=ctx)
    assert failed.value.code == "connection_error"
    assert failed.value.retryable is True
    assert "refused" in failed.value.message


# --- HTTPS: the connection goes to the pinned address, TLS checks the host name from the URL -------


def _certificate(tmp_path, host: str) -> tuple[str, ssl.SSLContext]:
    """Return (a CA bundle file, a server context whose certificate for host that CA signed)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, public_key, signing_key, *, ca: bool, names=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("Fleetdeck Test CA", "Fleetdeck Test CA", ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(host, "Fleetdeck Test CA", key.public_key(), ca_key, ca=False, names=[host])
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    return str(ca_file), server_context


def test_https_pins_the_address_and_verifies_the_host_name(ctx, settings, tmp_path, monkeypatch):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    ca_file, server_context = _certificate(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # trust the test CA the way an operator trusts a private CA
    server_names = []
    server_context.sni_callback = lambda sock, name, context: server_names.append(name)
    with loopback_server(echo, tls=server_context) as server:
        result = execute(spec=http_tool(f"https://localhost:{server.port}/secure"), arguments={}, ctx=ctx)
    assert result["body"]["path"] == "/secure"
    assert server_names == ["localhost"]
    assert server.requests[0].headers["Host"] == f"localhost:{server.port}"


def test_https_certificate_for_another_host_is_refused(ctx, settings, tmp_path, monkeypatch):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    ca_file, server_context = _certificate(tmp_path, "crm.example.com")
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    with loopback_server(echo, tls=server_context) as server:
        with pytest.raises(ToolError) as failed:
            execute(spec=http_tool(f"https://localhost:{server.port}/"), arguments={}, ctx=ctx)
    assert failed.value.code == "tls_error"
    assert "certificate of localhost could not be verified" in failed.value.message
    assert server.requests == []


def test_argument_text_is_never_read_as_a_secret_reference(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(
            server.url + "/",
            properties={"ref": STRINGS},
            headers={"Authorization": "Bearer {{secrets.crm_token}}", "X-Ref": "{ref}"},
            secrets=["crm_token"],
        )
        execute(spec=spec, arguments={"ref": "{{secrets.crm_token}}"}, ctx=ctx)
    assert server.requests[0].headers["X-Ref"] == "{{secrets.crm_token}}"


def test_header_argument_with_a_line_break_is_refused(ctx):
    with loopback_server(echo) as server:
        spec = http_tool(server.url + "/", properties={"ref": STRINGS}, headers={"X-Ref": "{ref}"})
        with pytest.raises(ToolError) as refused:
            execute(spec=spec, arguments={"ref": "a\r\nX-Admin: yes"}, ctx=ctx)
    assert refused.value.code == "invalid_arguments"
    assert server.requests == []


def test_pinned_connection_never_resolves_the_name_again():
    # The name does not resolve at all: reaching the server proves the connection used the given address,
    # while the server still sees the name in Host.
    with loopback_server(echo) as server:
        parsed = urlsplit(f"http://api.fleetdeck.invalid:{server.port}/ping")
        connection = open_pinned_connection(parsed, ["127.0.0.1"], timeout=5)
        try:
            connection.request("GET", "/ping")
            assert connection.getresponse().status == 200
        finally:
            connection.close()
    assert server.requests[0].headers["Host"] == f"api.fleetdeck.invalid:{server.port}"


def test_pinned_connection_falls_back_to_the_next_checked_address():
    with loopback_server(echo) as server:  # listens on 127.0.0.1 only: 127.0.0.2 refuses
        parsed = urlsplit(f"http://crm.internal:{server.port}/")
        connection = open_pinned_connection(parsed, ["127.0.0.2", "127.0.0.1"], timeout=5)
        try:
            connection.request("GET", "/")
            assert connection.getresponse().status == 200
        finally:
            connection.close()
    assert len(server.requests) == 1


@pytest.mark.parametrize("limit, fits", [(10_000, True), (2_000, False)])
def test_chunked_answer_is_read_within_the_limit(ctx, limit, fits):
    def handler(request):
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"items": [', b",".join([b'"item"'] * 500), b"]}"):
            request.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        request.wfile.write(b"0\r\n\r\n")

    with loopback_server(handler) as server:
        spec = http_tool(server.url + "/items", max_response_bytes=limit)
        if fits:
            assert len(execute(spec=spec, arguments={}, ctx=ctx)["body"]["items"]) == 500
        else:
            with pytest.raises(ToolError) as failed:
                execute(spec=spec, arguments={}, ctx=ctx)
            assert failed.value.code == "response_too_large"
