"""The MCP executor against a real MCP server process, over streamable HTTP on loopback and over stdio."""

from __future__ import annotations

import os
import sys
import time

import pytest

from apps.runtime.executors import mcp
from apps.runtime.executors.base import ToolCallContext, ToolError
from tests.runtime.mcp_server import running_http_server, stdio_command


@pytest.fixture(scope="module")
def server_url():
    with running_http_server() as url:
        yield url


@pytest.fixture
def loopback_allowed(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]


@pytest.fixture
def stdio_allowed(settings, monkeypatch):
    """Allow the Python executable by its bare name, found first on PATH (the test venv's Python)."""
    settings.FLEETDECK_MCP_STDIO_COMMANDS = [stdio_command()[0]]
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def call(config: dict, arguments: dict, *, timeout_s: int = 20, **ctx):
    spec = {"kind": "mcp", "config": config, "sandbox": {"timeout_s": timeout_s}}
    return mcp.execute(spec=spec, arguments=arguments, ctx=ToolCallContext(team_id=1, **ctx))


def http(url: str, tool_name: str) -> dict:
    return {"transport": "streamable_http", "url": url, "tool_name": tool_name}


def stdio(tool_name: str, command=None) -> dict:
    return {"transport": "stdio", "command": command or stdio_command(), "tool_name": tool_name}


def test_http_call_returns_the_structured_content(server_url, loopback_allowed):
    assert call(http(server_url, "Add.Numbers"), {"a": 2, "b": 40}) == {"total": 42, "terms": [2, 40]}


def test_http_call_without_structured_content_returns_the_text(server_url, loopback_allowed):
    assert call(http(server_url, "shout"), {"text": "quiet please"}) == "QUIET PLEASE"


def test_the_idempotency_key_travels_in_the_request_meta(server_url, loopback_allowed):
    result = call(http(server_url, "environment"), {}, idempotency_key="41:3")
    assert result["meta"][mcp.IDEMPOTENCY_META_KEY] == "41:3"


def test_a_tool_error_is_a_tool_error_with_the_servers_text(server_url, loopback_allowed):
    with pytest.raises(ToolError) as caught:
        call(http(server_url, "fail"), {"reason": "the ledger is closed"})
    assert caught.value.code == "mcp_tool_error"
    assert "the ledger is closed" in caught.value.message and "fail" in caught.value.message


def test_an_unknown_tool_is_a_tool_error(server_url, loopback_allowed):
    with pytest.raises(ToolError, match="Unknown tool"):
        call(http(server_url, "no_such_tool"), {})


def test_a_stdio_server_runs_with_an_empty_environment_in_a_temporary_directory(stdio_allowed, monkeypatch):
    monkeypatch.setenv("FLEETDECK_TEST_SECRET", "hunter2")
    result = call(stdio("environment"), {}, idempotency_key="7:1")
    # Python adds LC_CTYPE itself when it starts with the C locale; nothing comes from the worker.
    assert set(result["env"]) <= {"PATH", "HOME", "LC_CTYPE"}
    assert result["home"] == result["cwd"] and "fleetdeck-mcp-" in result["cwd"]
    assert not os.path.exists(result["cwd"])  # removed after the call
    assert result["meta"][mcp.IDEMPOTENCY_META_KEY] == "7:1"
    assert call(stdio("Add.Numbers"), {"a": 1}) == {"total": 1, "terms": [1, 0]}


def test_a_stdio_tool_error_is_a_tool_error(stdio_allowed):
    with pytest.raises(ToolError, match="refused: no stock") as caught:
        call(stdio("fail"), {"reason": "no stock"})
    assert caught.value.code == "mcp_tool_error"


def test_a_program_not_allowed_is_refused_before_it_runs(settings, tmp_path):
    settings.FLEETDECK_MCP_STDIO_COMMANDS = ["some-other-server"]
    marker = tmp_path / "ran"
    with pytest.raises(ToolError) as caught:
        call(stdio("echo", command=["touch", str(marker)]), {})
    assert caught.value.code == "mcp_command_refused"
    assert "FLEETDECK_MCP_STDIO_COMMANDS" in caught.value.message and "platform admin" in caught.value.message
    assert not marker.exists()


def test_a_program_given_with_a_path_is_refused(stdio_allowed):
    with pytest.raises(ToolError) as caught:
        call(stdio("echo", command=[sys.executable, *stdio_command()[1:]]), {})
    assert caught.value.code == "mcp_command_refused" and "without a path" in caught.value.message


def test_a_private_address_is_refused_by_the_guard(loopback_allowed):
    with pytest.raises(ToolError) as caught:
        call(http("http://10.0.0.1/mcp", "echo"), {"text": "x"})
    assert caught.value.code == "ssrf_refused" and "10.0.0.1" in caught.value.message


def test_loopback_is_refused_unless_a_platform_admin_allows_it(server_url, settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    with pytest.raises(ToolError) as caught:
        call(http(server_url, "echo"), {"text": "x"})
    assert caught.value.code == "ssrf_refused"


def test_a_slow_tool_times_out_at_the_sandbox_timeout(server_url, loopback_allowed):
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        call(http(server_url, "slow"), {"seconds": 30}, timeout_s=1)
    assert caught.value.code == "timeout" and "within 1 s" in caught.value.message
    assert time.monotonic() - started < 10


def test_a_slow_stdio_tool_times_out_at_the_runs_deadline(stdio_allowed):
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        call(stdio("slow"), {"seconds": 30}, timeout_s=60, deadline=time.monotonic() + 2)
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 15


def test_a_run_without_time_left_does_not_connect(server_url, loopback_allowed):
    with pytest.raises(ToolError) as caught:
        call(http(server_url, "echo"), {"text": "x"}, deadline=time.monotonic() - 1)
    assert caught.value.code == "deadline_exceeded"


def test_an_unreachable_server_says_which_url_failed(loopback_allowed):
    with pytest.raises(ToolError) as caught:
        call(http("http://127.0.0.1:9/mcp", "echo"), {"text": "x"})
    assert caught.value.code == "mcp_unreachable"
    assert "http://127.0.0.1:9/mcp" in caught.value.message and caught.value.retryable


def test_a_wrong_path_on_a_server_is_a_clear_error(server_url, loopback_allowed):
    with pytest.raises(ToolError) as caught:
        call(http(server_url.replace("/mcp", "/elsewhere"), "echo"), {"text": "x"})
    assert "/elsewhere" in caught.value.message and "/mcp" in caught.value.message


def test_a_program_that_is_not_an_mcp_server_is_a_clear_error(stdio_allowed):
    with pytest.raises(ToolError) as caught:
        call(stdio("echo", command=[stdio_command()[0], "-c", "import sys; print('hello', file=sys.stderr)"]), {})
    assert caught.value.code in {"mcp_error", "mcp_unreachable"}
    assert "speaks MCP" in caught.value.message and "hello" in caught.value.message
