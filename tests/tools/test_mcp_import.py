"""Importing an MCP server's tools into the registry: service, page and API, against a real MCP server."""

from __future__ import annotations

import json
import os
import sys

import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import AccessDenied, ServiceError
from apps.tools import services
from apps.tools.mcp_import import mcp_tool_name, mcp_tools_import
from apps.tools.models import Tool, ToolVersion
from tests.runtime.mcp_server import running_http_server, stdio_command
from tests.tools.factories import http_spec

SERVER_TOOLS = {"echo", "shout", "Add.Numbers", "fail", "slow", "environment"}


@pytest.fixture(scope="module")
def server_url():
    with running_http_server() as url:
        yield url


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]


def import_http(world, url, role="builder", **kwargs):
    return mcp_tools_import(actor=world[role], team=world.team, transport="streamable_http", url=url, **kwargs)


def tool_events():
    return AuditEvent.objects.filter(action__startswith="tool.")


@pytest.mark.parametrize(
    ("prefix", "mcp_name", "expected"),
    [
        ("", "search", "search"),
        ("", "getWeather", "get_weather"),
        ("", "Add.Numbers", "add.numbers"),
        ("crm-", "list customers!", "crm-list_customers"),
        ("", "42things", "mcp-42things"),
        ("", "x" * 100, "x" * 63),
    ],
)
def test_mcp_names_become_registry_names(prefix, mcp_name, expected):
    assert mcp_tool_name(prefix=prefix, mcp_name=mcp_name) == expected


def test_import_creates_a_tool_per_server_tool_with_its_schema(world, server_url):
    tools = import_http(world, server_url, prefix="demo-")
    by_mcp_name = {tool.draft_spec["config"]["tool_name"]: tool for tool in tools}
    assert set(by_mcp_name) == SERVER_TOOLS
    assert all(tool.mcp_import == {"status": "created", "published_version": None} for tool in tools)
    add = by_mcp_name["Add.Numbers"]
    assert add.name == "demo-add.numbers" and add.team == world.team and add.owner == world["builder"]
    spec = add.draft_spec
    assert spec["kind"] == "mcp" and spec["description"].startswith("Add two whole numbers")
    assert spec["parameters"]["properties"].keys() == {"a", "b"} and spec["parameters"]["required"] == ["a"]
    config = {key: value for key, value in spec["config"].items() if value is not None}
    assert config == {"transport": "streamable_http", "url": server_url, "tool_name": "Add.Numbers"}
    assert spec["side_effect"] == "write"  # the server does not say it only reads
    assert by_mcp_name["environment"].draft_spec["parameters"]["properties"] == {}
    assert tool_events().filter(action="tool.create").count() == len(SERVER_TOOLS)
    summary = AuditEvent.objects.get(action="tool.mcp_import")
    assert summary.metadata["tools"]["demo-add.numbers"] == "created"
    assert "127.0.0.1" in summary.metadata["server"]


def test_reimport_replaces_drafts_and_keeps_what_builders_set(world, server_url):
    first = {tool.name: tool for tool in import_http(world, server_url, publish_version="1.0.0")}
    assert first["echo"].mcp_import["published_version"] == "1.0.0"
    assert ToolVersion.objects.filter(tool__team=world.team).count() == len(SERVER_TOOLS)
    echo = first["echo"]
    edited = {**echo.draft_spec, "description": "Edited by hand.", "requires_approval": True}
    services.tool_update_draft(actor=world["builder"], tool=echo, spec=edited)

    again = {tool.name: tool for tool in import_http(world, server_url, publish_version="1.0.1")}

    assert again["echo"].mcp_import == {"status": "updated", "published_version": "1.0.1"}
    assert {t.mcp_import["status"] for name, t in again.items() if name != "echo"} == {"unchanged"}
    echo.refresh_from_db()
    assert echo.draft_spec["description"] == "Repeat the text back."  # from the server again
    assert echo.draft_spec["requires_approval"] is True  # the builder's setting stays
    assert Tool.objects.filter(team=world.team).count() == len(SERVER_TOOLS)
    assert list(echo.versions.values_list("version", flat=True).order_by("created_at")) == ["1.0.0", "1.0.1"]
    assert ToolVersion.objects.filter(tool__team=world.team).count() == len(SERVER_TOOLS) + 1


def test_import_over_stdio(world, settings, monkeypatch):
    settings.FLEETDECK_MCP_STDIO_COMMANDS = [stdio_command()[0]]
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    tools = mcp_tools_import(actor=world["owner"], team=world.team, transport="stdio", command=stdio_command())
    shout = next(tool for tool in tools if tool.name == "shout")
    config = {key: value for key, value in shout.draft_spec["config"].items() if value is not None}
    assert config == {"transport": "stdio", "command": stdio_command(), "tool_name": "shout"}


@pytest.mark.parametrize("role", ["viewer", "operator", "auditor", "outsider"])
def test_import_by_a_role_that_may_not_edit_is_refused_and_writes_nothing(world, server_url, role):
    with pytest.raises(AccessDenied):
        import_http(world, server_url, role=role)
    assert not Tool.objects.exists() and not tool_events().exists()


def test_an_unreachable_server_is_a_clear_error_and_writes_nothing(world):
    with pytest.raises(ServiceError) as caught:
        import_http(world, "http://127.0.0.1:9/mcp")
    assert caught.value.field == "url"
    assert "http://127.0.0.1:9/mcp" in caught.value.message and "Could not reach" in caught.value.message
    assert not Tool.objects.exists() and not tool_events().exists()


def test_a_private_address_is_refused_before_connecting(world):
    with pytest.raises(ServiceError) as caught:
        import_http(world, "http://10.0.0.1/mcp")
    assert caught.value.field == "url" and "10.0.0.1" in caught.value.message
    assert not Tool.objects.exists()


def test_a_stdio_program_not_allowed_is_refused(world, settings):
    settings.FLEETDECK_MCP_STDIO_COMMANDS = []
    with pytest.raises(ServiceError) as caught:
        mcp_tools_import(actor=world["builder"], team=world.team, transport="stdio", command=["rm", "-rf", "/"])
    assert caught.value.field == "command" and "FLEETDECK_MCP_STDIO_COMMANDS" in caught.value.message


def test_a_name_clash_with_a_tool_of_another_kind_writes_nothing(world, server_url):
    services.tool_create(actor=world["builder"], team=world.team, name="echo", spec=http_spec())
    events = tool_events().count()
    with pytest.raises(ServiceError) as caught:
        import_http(world, server_url)
    assert caught.value.field == "prefix" and "echo" in caught.value.message
    assert Tool.objects.filter(team=world.team).count() == 1 and tool_events().count() == events


def test_a_refused_publish_rolls_back_the_whole_import(world, server_url):
    # "slow" comes fifth in the server's listing: echo, shout, Add.Numbers and fail are created and
    # published before publishing slow is refused (it is deprecated), and none of it may stay.
    spec = {"description": "Old.", "kind": "mcp", "config": {"url": "https://mcp.example.com/mcp", "tool_name": "x"}}
    slow = services.tool_create(actor=world["builder"], team=world.team, name="slow", spec=spec)
    services.tool_deprecate(actor=world["builder"], tool=slow, reason="Replaced.")
    events = tool_events().count()
    with pytest.raises(ServiceError, match="deprecated"):
        import_http(world, server_url, publish_version="1.0.0")
    assert list(Tool.objects.values_list("name", flat=True)) == ["slow"]
    assert not ToolVersion.objects.exists() and tool_events().count() == events
    slow.refresh_from_db()
    assert slow.draft_spec["description"] == "Old."


def test_a_bad_version_is_refused_before_connecting(world):
    with pytest.raises(ServiceError) as caught:
        import_http(world, "http://127.0.0.1:9/mcp", publish_version="one")
    assert caught.value.field == "version"


# --- The page -------------------------------------------------------------------------------------


def test_the_import_page_shows_the_form(client, world):
    client.force_login(world["builder"])
    page = client.get("/tools/import-mcp/").content.decode()
    assert "Import from an MCP server" in page and 'name="url"' in page and 'name="command"' in page


def test_a_builder_imports_from_the_page(client, world, server_url):
    client.force_login(world["builder"])
    response = client.post("/tools/import-mcp/", {"transport": "streamable_http", "url": server_url, "prefix": "p-"})
    assert response.status_code == 302 and response["Location"] == "/tools/?team=payments&kind=mcp"
    assert set(Tool.objects.filter(team=world.team).values_list("name", flat=True)) == {
        "p-echo",
        "p-shout",
        "p-add.numbers",
        "p-fail",
        "p-slow",
        "p-environment",
    }
    page = client.get(response["Location"]).content.decode()
    assert "6 created" in page and 'data-tool="p-add.numbers"' in page


def test_the_page_shows_a_connection_error_beside_the_url(client, world):
    client.force_login(world["builder"])
    response = client.post("/tools/import-mcp/", {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-field="url"' in page and "Could not reach" in page
    assert not Tool.objects.exists()


def test_the_page_reads_a_quoted_command(client, world, settings):
    settings.FLEETDECK_MCP_STDIO_COMMANDS = []
    client.force_login(world["builder"])
    response = client.post("/tools/import-mcp/", {"transport": "stdio", "command": "'my server' --stdio"})
    assert response.status_code == 400 and "my server" in response.content.decode()
    response = client.post("/tools/import-mcp/", {"transport": "stdio", "command": "'unclosed"})
    assert response.status_code == 400 and "check its quotes" in response.content.decode()


def test_a_viewer_sees_no_form_and_may_not_post(client, world, server_url):
    client.force_login(world["viewer"])
    page = client.get("/tools/import-mcp/").content.decode()
    assert "does not allow importing" in page and "import-mcp-form" not in page
    response = client.post("/tools/import-mcp/", {"transport": "streamable_http", "url": server_url})
    assert response.status_code == 403 and not Tool.objects.exists()


# --- The API --------------------------------------------------------------------------------------


def api_import(client, data):
    return client.post("/api/v1/tools/import-mcp/", data=json.dumps(data), content_type="application/json")


def test_the_api_imports_and_reports_each_tool(client, world, server_url):
    client.force_login(world["builder"])
    response = api_import(client, {"team": "payments", "url": server_url, "publish_version": "1.0.0"})
    assert response.status_code == 201
    rows = {row["tool"]["name"]: row for row in response.json()["tools"]}
    assert rows["add.numbers"]["status"] == "created" and rows["add.numbers"]["published_version"] == "1.0.0"
    assert rows["add.numbers"]["tool"]["kind"] == "mcp" and rows["add.numbers"]["tool"]["latest_version"] == "1.0.0"
    again = api_import(client, {"team": "payments", "url": server_url})
    assert again.status_code == 200 and {row["status"] for row in again.json()["tools"]} == {"unchanged"}


def test_the_api_refuses_a_viewer_and_hides_other_teams(client, world, server_url):
    client.force_login(world["viewer"])
    assert api_import(client, {"team": "payments", "url": server_url}).status_code == 403
    client.force_login(world["outsider"])
    assert api_import(client, {"team": "payments", "url": server_url}).status_code == 404
    assert not Tool.objects.exists()


def test_the_api_names_the_field_of_a_connection_error(client, world):
    client.force_login(world["builder"])
    response = api_import(client, {"team": "payments", "url": "http://127.0.0.1:9/mcp"})
    assert response.status_code == 400 and "url" in json.dumps(response.json())
