"""Permission-matrix rows for the tools area (see tests/matrix.py)."""

from tests.matrix import everyone

# Builders and owners of payments (and platform admins) change tools; everyone in payments and the
# auditor read them; a member of another team does not see them at all.
EDIT = dict(outsider=404, viewer=403, operator=403, auditor=403)
READ = dict(outsider=404)

IMPORT_DOCUMENT = """apiVersion: fleetdeck/v1
kind: Tool
metadata:
  name: imported-tool
  description: Imported from a file
spec:
  description: Search the shared facts.
  kind: context
  config:
    operation: search
    space: shared
"""
BUILDER_FORM = {
    "action": "save_draft",
    "spec_description": "Look up a customer.",
    "kind": "context",
    "parameters": "",
    # Doubled braces: the matrix fills {placeholders} in row data with str.format.
    "config": '{{"operation": "read", "space": "shared"}}',
    "side_effect": "read",
    "audit": "on",
}

PAGES = [
    ("tool_list", "get", "/tools/", None, everyone(200)),
    ("tool_list_filtered", "get", "/tools/?kind=http&side_effect=read&q=crm", None, everyone(200)),
    ("tool_create_page", "get", "/tools/new/", None, everyone(200)),
    (
        "tool_create",
        "post",
        "/tools/new/",
        {**BUILDER_FORM, "name": "new-tool", "description": ""},
        # The outsider creates in their own current team (support); auditors change nothing.
        everyone(403, outsider=302, builder=302, owner=302, admin=302),
    ),
    ("tool_detail", "get", "/tools/{tool}/", None, everyone(200, **READ)),
    ("tool_save_draft", "post", "/tools/{tool}/", BUILDER_FORM, everyone(302, **EDIT)),
    ("tool_publish", "post", "/tools/{tool}/", {"action": "publish", "version": "2.0.0"}, everyone(302, **EDIT)),
    ("tool_set_owner", "post", "/tools/{tool}/", {"action": "set_owner", "owner": "olivia"}, everyone(302, **EDIT)),
    ("toolversion_detail", "get", "/tools/{tool}/versions/1.0.0/", None, everyone(200, **READ)),
    ("toolversion_missing", "get", "/tools/{tool}/versions/9.9.9/", None, everyone(404)),
    ("tool_diff", "get", "/tools/{tool}/diff/?a=1.0.0&b=1.1.0", None, everyone(200, **READ)),
    ("tool_export", "get", "/tools/{tool}/export/?version=1.0.0&format=json", None, everyone(200, **READ)),
    ("tool_import_page", "get", "/tools/import/", None, everyone(200)),
    (
        "tool_import",
        "post",
        "/tools/import/",
        {"document": IMPORT_DOCUMENT, "publish_version": "1.0.0"},
        everyone(403, outsider=302, builder=302, owner=302, admin=302),
    ),
    ("tool_impact", "get", "/tools/{tool}/impact/", None, everyone(200, **READ)),
    ("tool_deprecate", "post", "/tools/{tool}/deprecate/", {"reason": "Use crm-v2."}, everyone(302, **EDIT)),
    ("tool_undeprecate", "post", "/tools/{deprecated_tool}/undeprecate/", None, everyone(302, **EDIT)),
]

A = dict(anonymous=401)
API = [
    ("api_tools", "get", "/api/v1/tools/", None, everyone(200, **A)),
    ("api_tools_filtered", "get", "/api/v1/tools/?team=payments&kind=http&deprecated=false", None, everyone(200, **A)),
    (
        "api_tool_create",
        "post",
        "/api/v1/tools/",
        {
            "team": "payments",
            "name": "api-tool",
            "spec": {"description": "d", "kind": "context", "config": {"operation": "read", "space": "s"}},
        },
        everyone(201, **A, **EDIT),
    ),
    ("api_tool", "get", "/api/v1/tools/{tool}/", None, everyone(200, **A, **READ)),
    ("api_tool_patch", "patch", "/api/v1/tools/{tool}/", {"description": "Changed."}, everyone(200, **A, **EDIT)),
    ("api_tool_put", "put", "/api/v1/tools/{tool}/", {"description": "Changed."}, everyone(405, **A)),
    ("api_tool_delete", "delete", "/api/v1/tools/{tool}/", None, everyone(405, **A)),
    ("api_tool_publish", "post", "/api/v1/tools/{tool}/publish/", {"version": "2.0.0"}, everyone(201, **A, **EDIT)),
    ("api_tool_versions", "get", "/api/v1/tools/{tool}/versions/", None, everyone(200, **A, **READ)),
    ("api_toolversion", "get", "/api/v1/tools/{tool}/versions/1.0.0/", None, everyone(200, **A, **READ)),
    ("api_toolversion_patch", "patch", "/api/v1/tools/{tool}/versions/1.0.0/", {"spec": {}}, everyone(405, **A)),
    ("api_toolversion_put", "put", "/api/v1/tools/{tool}/versions/1.0.0/", {"spec": {}}, everyone(405, **A)),
    ("api_toolversion_delete", "delete", "/api/v1/tools/{tool}/versions/1.0.0/", None, everyone(405, **A)),
    ("api_tool_diff", "get", "/api/v1/tools/{tool}/diff/?a=1.0.0&b=1.1.0", None, everyone(200, **A, **READ)),
    ("api_tool_export", "get", "/api/v1/tools/{tool}/export/?format=yaml", None, everyone(200, **A, **READ)),
    (
        "api_tool_import",
        "post",
        "/api/v1/tools/import/",
        {"team": "payments", "document": IMPORT_DOCUMENT},
        everyone(201, **A, **EDIT),
    ),
    ("api_tool_impact", "get", "/api/v1/tools/{tool}/impact/", None, everyone(200, **A, **READ)),
    (
        "api_tool_deprecate",
        "post",
        "/api/v1/tools/{tool}/deprecate/",
        {"reason": "Use v2."},
        everyone(200, **A, **EDIT),
    ),
    ("api_tool_undeprecate", "post", "/api/v1/tools/{deprecated_tool}/undeprecate/", None, everyone(200, **A, **EDIT)),
]


def setup(world) -> dict:
    """Create a tool in payments with versions 1.0.0 and 1.1.0 and an unpublished draft, and a deprecated tool."""
    from apps.tools.services import tool_deprecate
    from tests.tools.factories import tool_with_versions

    builder = world["builder"]
    tool = tool_with_versions(actor=builder, team=world.team, versions=("1.0.0", "1.1.0"), draft_change=True)
    old = tool_with_versions(actor=builder, team=world.team, name="old-lookup")
    tool_deprecate(actor=builder, tool=old, reason="Replaced by crm-lookup.")
    return {"tool": tool.pk, "deprecated_tool": old.pk}


# Importing from an MCP server (tests/tools/test_mcp_import.py covers the import itself). The matrix
# runs no MCP server: the roles allowed past the permission check are answered 400, because the
# program named is not in FLEETDECK_MCP_STDIO_COMMANDS; the others are refused before any check.
MCP_IMPORT_FORM = {"transport": "stdio", "command": "not-an-allowed-mcp-server --stdio"}
PAGES += [
    ("tool_import_mcp_page", "get", "/tools/import-mcp/", None, everyone(200)),
    (
        "tool_import_mcp",
        "post",
        "/tools/import-mcp/",
        MCP_IMPORT_FORM,
        # The outsider imports into their own current team (support); auditors change nothing.
        everyone(403, outsider=400, builder=400, owner=400, admin=400),
    ),
]
API += [
    (
        "api_tool_import_mcp",
        "post",
        "/api/v1/tools/import-mcp/",
        {"team": "payments", "transport": "stdio", "command": ["not-an-allowed-mcp-server"]},
        everyone(400, **A, **EDIT),
    ),
]
