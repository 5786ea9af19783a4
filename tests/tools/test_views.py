"""Tool pages: the builder with inline errors, read-only views, versions, diff, spec files, impact."""

import json

import yaml

from apps.audit.models import AuditEvent
from apps.tools.models import Tool
from tests.tools.factories import http_spec, tool_with_versions

BUILDER = {
    "spec_description": "Look up a customer in the CRM by id.",
    "kind": "http",
    "parameters": json.dumps(http_spec()["parameters"]),
    "config": json.dumps({"url": "https://crm.example.com/customers/{id}"}),
    "permissions_required": "crm.read, crm.audit",
    "side_effect": "read",
    "audit": "on",
    "cost_per_call": "0.002",
    "rate_limit_per_seconds": "60",
    "sandbox_cpu_seconds": "10",
    "sandbox_memory_mb": "256",
    "sandbox_timeout_s": "30",
}


def test_the_list_shows_kind_side_effect_permissions_and_latest_version(client, world, tool):
    client.force_login(world["viewer"])
    page = client.get("/tools/").content.decode()
    assert 'data-tool="crm-lookup"' in page and "crm.read" in page and ">1.0.0<" in page and "http" in page
    assert "New tool" not in page  # viewers do not create
    assert 'data-tool="crm-lookup"' not in client.get("/tools/?kind=python").content.decode()
    client.force_login(world["outsider"])
    assert 'data-tool="crm-lookup"' not in client.get("/tools/").content.decode()


def test_a_builder_creates_a_tool_with_the_builder_form(client, world):
    client.force_login(world["builder"])
    assert "Parameters (JSON Schema)" in client.get("/tools/new/?kind=python").content.decode()
    response = client.post("/tools/new/", {**BUILDER, "name": "crm-lookup", "description": ""})
    tool = Tool.objects.get(name="crm-lookup")
    assert response.status_code == 302 and response["Location"] == f"/tools/{tool.pk}/"
    assert tool.draft_spec["permissions_required"] == ["crm.audit", "crm.read"]
    assert tool.draft_spec["cost_per_call"] == 0.002 and tool.team == world.team


def test_an_invalid_json_schema_is_shown_beside_the_parameters_and_nothing_is_saved(client, world):
    client.force_login(world["builder"])
    bad_schema = {**BUILDER, "name": "t", "parameters": '{"type": "object", "properties": {"id": {"type": 5}}}'}
    response = client.post("/tools/new/", bad_schema)
    page = response.content.decode()
    assert response.status_code == 400
    assert 'data-field="parameters"' in page and "not a valid JSON Schema" in page
    broken = client.post("/tools/new/", {**BUILDER, "name": "t", "parameters": '{"type": "object",'})
    assert broken.status_code == 400 and "not valid JSON at line 1" in broken.content.decode()
    assert not Tool.objects.exists() and not AuditEvent.objects.filter(action="tool.create").exists()


def test_errors_inside_config_and_sandbox_land_beside_their_inputs(client, world):
    client.force_login(world["builder"])
    response = client.post("/tools/new/", {**BUILDER, "name": "t", "config": '{"url": "https://x.example.com/{nope}"}'})
    assert response.status_code == 400 and 'data-field="config"' in response.content.decode()
    response = client.post("/tools/new/", {**BUILDER, "name": "t", "sandbox_memory_mb": "9999"})
    page = response.content.decode()
    assert 'data-field="sandbox_memory_mb"' in page and "between 16 and 4096" in page


def test_viewers_get_a_read_only_tool_page(client, world, tool):
    client.force_login(world["viewer"])
    page = client.get(f"/tools/{tool.pk}/").content.decode()
    assert "Read only" in page and "builder-form" not in page and "publish-form" not in page
    assert client.post(f"/tools/{tool.pk}/", {**BUILDER, "action": "save_draft"}).status_code == 403
    create = client.get("/tools/new/").content.decode()
    assert "does not allow creating tools" in create and "tool-create-form" not in create


def test_save_draft_check_and_publish_from_the_detail_page(client, world, tool):
    client.force_login(world["builder"])
    url = f"/tools/{tool.pk}/"
    checked = client.post(url, {**BUILDER, "action": "check"})
    assert checked.status_code == 200 and "The definition is valid" in checked.content.decode()
    tool.refresh_from_db()
    assert tool.draft_spec["permissions_required"] == ["crm.read"]  # checking saves nothing
    assert client.post(url, {**BUILDER, "action": "save_draft"}).status_code == 302
    tool.refresh_from_db()
    assert tool.draft_spec["permissions_required"] == ["crm.audit", "crm.read"]
    page = client.get(url).content.decode()
    assert "has changes not yet published" in page and "patch 1.0.1" in page
    stale = client.post(url, {"action": "publish", "version": "1.0.0"})
    assert stale.status_code == 400 and "must be greater than the latest published version" in stale.content.decode()
    published = client.post(url, {"action": "publish", "version": "1.1.0", "release_notes": "Audit permission"})
    assert published.status_code == 302 and published["Location"] == f"/tools/{tool.pk}/versions/1.1.0/"


def test_a_bad_draft_is_refused_inline(client, world, tool):
    client.force_login(world["builder"])
    response = client.post(f"/tools/{tool.pk}/", {**BUILDER, "action": "save_draft", "permissions_required": "Not OK"})
    page = response.content.decode()
    assert response.status_code == 400 and 'data-field="permissions_required"' in page
    tool.refresh_from_db()
    assert tool.draft_spec["permissions_required"] == ["crm.read"]


def test_owner_change_from_the_page(client, world, tool):
    client.force_login(world["builder"])
    assert client.post(f"/tools/{tool.pk}/", {"action": "set_owner", "owner": "olivia"}).status_code == 302
    tool.refresh_from_db()
    assert tool.owner == world["owner"]
    refused = client.post(f"/tools/{tool.pk}/", {"action": "set_owner", "owner": "xavier"})
    assert refused.status_code == 400 and "not a member" in refused.content.decode()


def test_a_version_page_has_no_edit_form(client, world, tool):
    client.force_login(world["owner"])
    page = client.get(f"/tools/{tool.pk}/versions/1.0.0/").content.decode()
    version = tool.versions.get()
    assert version.content_hash in page and "never changes" in page
    assert "Save draft" not in page and 'name="action"' not in page
    assert client.post(f"/tools/{tool.pk}/versions/1.0.0/", {"spec": "{}"}).status_code == 405


def test_diff_page_shows_what_changed(client, world):
    tool = tool_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0"))
    client.force_login(world["viewer"])
    page = client.get(f"/tools/{tool.pk}/diff/").content.decode()
    assert "1.0.0 → 1.1.0" in page and "<code>description</code>" in page and "Revision 1." in page
    assert client.get(f"/tools/{tool.pk}/diff/?a=1.0.0&b=9.0.0").status_code == 404


def test_export_and_import_pages_round_trip(client, world, tool):
    client.force_login(world["builder"])
    response = client.get(f"/tools/{tool.pk}/export/?version=1.0.0")
    assert response["Content-Disposition"] == 'attachment; filename="crm-lookup-1.0.0.yaml"'
    document = yaml.safe_load(response.content)
    assert document["metadata"] == {"name": "crm-lookup", "description": tool.description, "owner": "ben"}
    document["metadata"]["name"] = "crm-copy"
    imported = client.post("/tools/import/", {"document": yaml.safe_dump(document), "publish_version": "1.0.0"})
    copy = Tool.objects.get(name="crm-copy")
    assert imported.status_code == 302 and copy.versions.get().content_hash == tool.versions.get().content_hash


def test_a_bad_import_shows_the_field_and_saves_nothing(client, world):
    client.force_login(world["builder"])
    text = "apiVersion: fleetdeck/v1\nkind: Tool\nmetadata: {name: t}\nspec: {description: x, kind: ftp}\n"
    response = client.post("/tools/import/", {"document": text})
    assert response.status_code == 400 and "spec.kind" in response.content.decode()
    empty = client.post("/tools/import/", {"document": ""})
    assert empty.status_code == 400 and "Paste a spec file" in empty.content.decode()
    assert not Tool.objects.exists()


def test_impact_page_and_deprecation(client, world, tool, agent_using):
    agent_using(tool.versions.get(), "billing-bot", "2.0.0", channels=["production"])
    client.force_login(world["builder"])
    page = client.get(f"/tools/{tool.pk}/impact/").content.decode()
    assert 'data-agent="billing-bot"' in page and "<strong>production</strong>" in page
    assert "1 of them is live" in page
    missing = client.post(f"/tools/{tool.pk}/deprecate/", {"reason": ""})
    assert missing.status_code == 400 and 'data-field="reason"' in missing.content.decode()
    assert client.post(f"/tools/{tool.pk}/deprecate/", {"reason": "Use crm-v2."}).status_code == 302
    tool.refresh_from_db()
    assert tool.deprecated
    assert "Undeprecate" in client.get(f"/tools/{tool.pk}/impact/").content.decode()
    assert client.post(f"/tools/{tool.pk}/undeprecate/").status_code == 302
    tool.refresh_from_db()
    assert not tool.deprecated
    assert client.get(f"/tools/{tool.pk}/deprecate/").status_code == 405


def test_a_draft_waiting_for_a_secret_grant_says_so(client, world, secret, grant):
    from apps.tools.services import tool_create

    spec = http_spec(
        secrets=["crm-key"],
        config={"url": "https://crm.example.com/c/{id}", "headers": {"Authorization": "Bearer {{secrets.crm-key}}"}},
    )
    tool = tool_create(actor=world["builder"], team=world.team, name="secured", spec=spec)
    client.force_login(world["builder"])
    page = client.get(f"/tools/{tool.pk}/").content.decode()
    assert 'id="draft-problem"' in page and "not granted to the tool secured" in page
    refused = client.post(f"/tools/{tool.pk}/", {"action": "publish", "version": "1.0.0"})
    assert refused.status_code == 400 and "a team owner grants it under Secrets" in refused.content.decode()
    grant(secret, tool)
    assert 'id="draft-problem"' not in client.get(f"/tools/{tool.pk}/").content.decode()
    assert client.post(f"/tools/{tool.pk}/", {"action": "publish", "version": "1.0.0"}).status_code == 302
    assert "s3cret-value" not in client.get(f"/tools/{tool.pk}/versions/1.0.0/").content.decode()


def test_the_admin_shows_versions_read_only(client, world, tool):
    client.force_login(world["admin"])
    version = tool.versions.get()
    page = client.get(f"/admin/tools/toolversion/{version.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/tools/toolversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/tools/tool/add/").status_code == 403
