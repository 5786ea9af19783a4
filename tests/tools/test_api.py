"""The tool API: filtered lists, clear 400s naming the field, immutable versions, diff, spec files, impact."""

import json

import pytest
import yaml

from apps.accounts.services import token_create
from apps.tools.models import Tool, ToolVersion
from tests.tools.factories import http_spec, tool_with_versions


@pytest.fixture
def api(client, world):
    client.force_login(world["builder"])

    def call(method, path, data=None, **extra):
        kwargs = {"data": json.dumps(data), "content_type": "application/json"} if data is not None else {}
        return getattr(client, method)(f"/api/v1/tools/{path}", **kwargs, **extra)

    return call


def test_list_is_paginated_and_filtered(api, world, tool):
    from apps.tools.services import tool_create

    tool_create(
        actor=world["builder"],
        team=world.team,
        name="facts",
        spec={"description": "F", "kind": "context", "config": {"operation": "read", "space": "kb"}},
    )
    body = api("get", "").json()
    assert body["count"] == 2 and [t["name"] for t in body["results"]] == ["crm-lookup", "facts"]
    row = body["results"][0]
    assert (row["team"], row["kind"], row["side_effect"], row["permissions_required"], row["latest_version"]) == (
        "payments",
        "http",
        "read",
        ["crm.read"],
        "1.0.0",
    )
    assert [t["name"] for t in api("get", "?kind=context").json()["results"]] == ["facts"]
    assert [t["name"] for t in api("get", "?q=crm&side_effect=read&deprecated=false").json()["results"]] == [
        "crm-lookup"
    ]
    assert api("get", "?team=support").json()["count"] == 0
    bad = api("get", "?kind=ftp")
    assert bad.status_code == 400 and "kind" in bad.json()


def test_create_and_read_back(api):
    response = api("post", "", {"team": "payments", "name": "crm-lookup", "spec": http_spec()})
    assert response.status_code == 201
    body = response.json()
    assert body["owner"] == "ben" and body["latest_version"] is None and body["kind"] == "http"
    assert api("get", f"{body['id']}/").json()["draft_spec"]["config"]["method"] == "GET"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"spec": http_spec(parameters={"type": "object", "properties": {"id": {"type": "strnig"}}})}, "parameters"),
        ({"spec": {**http_spec(), "colour": "red"}}, "colour"),
        ({"spec": http_spec(sandbox={"memory_mb": "big"})}, "sandbox.memory_mb"),
        ({"spec": http_spec(description="x" * 5000)}, "description"),
        ({"spec": http_spec(secrets=["crm-key"])}, "secrets"),
        ({"spec": "not an object"}, "spec"),
        ({"name": "Bad Name"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"owner": "xavier"}, "owner"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_saves_nothing(api, payload, field):
    response = api("post", "", {"team": "payments", "name": "t", "spec": http_spec(), **payload})
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Tool.objects.exists()


def test_duplicate_names_and_other_teams(api, world, tool):
    duplicate = api("post", "", {"team": "payments", "name": "crm-lookup", "spec": http_spec()})
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["name"][0]
    assert api("post", "", {"team": "support", "name": "t", "spec": http_spec()}).status_code == 404
    theirs = tool_with_versions(actor=world["outsider"], team=world.other_team, name="support-only")
    for method, path in [
        ("get", ""),
        ("get", "versions/"),
        ("get", "impact/"),
        ("get", "export/"),
        ("post", "publish/"),
    ]:
        assert api(method, f"{theirs.pk}/{path}", {} if method == "post" else None).status_code == 404


def test_patch_replaces_the_draft_or_refuses_without_saving(api, tool):
    response = api("patch", f"{tool.pk}/", {"spec": http_spec(description="Newer."), "description": "For people"})
    assert response.status_code == 200 and response.json()["draft_spec"]["description"] == "Newer."
    refused = api("patch", f"{tool.pk}/", {"spec": http_spec(kind="ftp")})
    assert refused.status_code == 400 and "kind" in refused.json()
    tool.refresh_from_db()
    assert tool.draft_spec["description"] == "Newer." and tool.description == "For people"
    assert api("patch", f"{tool.pk}/", {}).status_code == 400


def test_publish_and_versions(api, tool):
    assert api("post", f"{tool.pk}/publish/", {"version": "1.0.1"}).json()["version"] == [
        "Nothing changed since 1.0.0: edit the draft before publishing."
    ]
    api("patch", f"{tool.pk}/", {"spec": http_spec(description="Newer.")})
    stale = api("post", f"{tool.pk}/publish/", {"version": "0.9.0"})
    assert stale.status_code == 400 and "greater than" in stale.json()["version"][0]
    published = api("post", f"{tool.pk}/publish/", {"version": "1.1.0", "release_notes": "Words"})
    assert published.status_code == 201 and published.json()["ref"] == "crm-lookup@1.1.0"
    versions = api("get", f"{tool.pk}/versions/").json()
    assert [v["version"] for v in versions["results"]] == ["1.1.0", "1.0.0"]
    one = api("get", f"{tool.pk}/versions/1.0.0/").json()
    assert one["spec"]["description"] == "Look up a customer in the CRM by id." and one["author"] == "ben"
    assert api("get", f"{tool.pk}/versions/7.0.0/").status_code == 404


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_versions_cannot_be_changed_through_the_api(api, tool, method):
    before = ToolVersion.objects.get().spec
    response = api(method, f"{tool.pk}/versions/1.0.0/", {"spec": {"description": "hacked"}})
    assert response.status_code == 405
    assert ToolVersion.objects.get().spec == before


def test_diff_between_any_two_versions(api, world):
    tool = tool_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0", "2.0.0"))
    body = api("get", f"{tool.pk}/diff/?a=1.0.0&b=2.0.0").json()
    assert body["from"]["version"] == "1.0.0" and body["to"]["version"] == "2.0.0"
    assert body["changes"] == [
        {
            "path": "description",
            "change": "changed",
            "before": "Look up a customer in the CRM by id.",
            "after": "Revision 2.",
        }
    ]
    assert api("get", f"{tool.pk}/diff/").json()["from"]["version"] == "1.1.0"
    assert api("get", f"{tool.pk}/diff/?a=1.0.0&b=5.0.0").status_code == 404


def test_export_in_both_formats(api, tool):
    as_json = api("get", f"{tool.pk}/export/?format=json&version=1.0.0")
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/json")
    assert json.loads(as_json.content)["spec"] == tool.versions.get().spec
    as_yaml = api("get", f"{tool.pk}/export/")
    assert as_yaml["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.content)["kind"] == "Tool"
    assert api("get", f"{tool.pk}/export/?format=xml").status_code == 400


def test_import_creates_then_replaces(api, tool):
    document = api("get", f"{tool.pk}/export/?format=json").content.decode()
    copy = document.replace('"name": "crm-lookup"', '"name": "crm-copy"')
    created = api("post", "import/", {"team": "payments", "document": copy, "publish_version": "1.0.0"})
    assert created.status_code == 201 and created.json()["published_version"] == "1.0.0"
    assert created.json()["tool"]["name"] == "crm-copy" and created.json()["created"] is True
    again = api("post", "import/", {"team": "payments", "document": copy.replace("CRM by id", "CRM")})
    assert again.status_code == 200 and again.json()["created"] is False
    bad = api("post", "import/", {"team": "payments", "document": copy.replace('"kind": "http"', '"kind": "ftp"')})
    assert bad.status_code == 400 and "spec.kind" in bad.json()
    assert api("post", "import/", {"team": "payments", "document": "- a list"}).json()["document"]


def test_impact_and_deprecation(api, world, tool, agent_using):
    agent_using(tool.versions.get(), "billing-bot", "1.0.0", channels=["production", "staging"])
    rows = api("get", f"{tool.pk}/impact/").json()
    assert rows == [
        {
            "version": "1.0.0",
            "agent_versions": [
                {
                    "agent": "billing-bot",
                    "agent_id": rows[0]["agent_versions"][0]["agent_id"],
                    "version": "1.0.0",
                    "live": ["production", "staging"],
                }
            ],
        }
    ]
    assert api("post", f"{tool.pk}/deprecate/", {}).json()["reason"]
    assert api("post", f"{tool.pk}/deprecate/", {"reason": "Use v2."}).json()["deprecated"] is True
    assert api("post", f"{tool.pk}/deprecate/", {"reason": "again"}).status_code == 400
    assert api("post", f"{tool.pk}/undeprecate/").json()["deprecated"] is False


def test_a_read_token_reads_but_cannot_write(client, world, tool):
    _token, secret = token_create(actor=world["builder"], team=world.team, name="reader", scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/tools/", **auth).json()["count"] == 1
    response = client.post(
        f"/api/v1/tools/{tool.pk}/deprecate/", data={"reason": "x"}, content_type="application/json", **auth
    )
    assert response.status_code == 403
