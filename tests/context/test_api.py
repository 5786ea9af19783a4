"""The context API: spaces, entries, state with 409 on conflict, search, grants; tokens and tenancy."""

import json

import pytest

from apps.accounts.services import token_create
from apps.context import services
from apps.context.models import ContextEntry, ContextGrant, ContextSpace, ContextState
from tests.context.conftest import make_agent

BASE = "/api/v1/context/spaces/"


@pytest.fixture
def api(client, world):
    client.force_login(world["builder"])

    def call(method, path="", data=None, **headers):
        kwargs = {"data": json.dumps(data), "content_type": "application/json"} if data is not None else {}
        return getattr(client, method)(f"{BASE}{path}", **kwargs, **headers)

    return call


def test_spaces_create_list_patch_delete(api, world):
    created = api("post", "", {"team": "payments", "name": "ops-notes", "description": "Runbooks."})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["team"] == "payments" and body["created_by"] == "ben" and body["entry_count"] == 0
    assert api("post", "", {"team": "payments", "name": "Bad Name"}).json()["name"]
    assert api("post", "", {"team": "support", "name": "theirs"}).status_code == 404
    assert api("get", "?team=payments&q=ops").json()["count"] == 1
    assert api("get", "?team=support").json()["count"] == 0
    pk = body["id"]
    assert api("patch", f"{pk}/", {"description": "Changed."}).json()["description"] == "Changed."
    assert api("put", f"{pk}/", {"description": "x"}).status_code == 405
    assert api("delete", f"{pk}/").status_code == 204 and not ContextSpace.objects.exists()


def test_entries_and_the_append_only_decisions(api, world, space):
    fact = api("post", f"{space.pk}/entries/", {"kind": "fact", "key": "refund-days", "body": "5 days."})
    assert fact.status_code == 201 and fact.json()["author"] == "ben"
    doc = api("post", f"{space.pk}/entries/", {"kind": "document", "title": "Handbook", "body": "x" * 1000})
    decision = api(
        "post", f"{space.pk}/entries/", {"kind": "decision", "title": "Pause refunds", "body": "Provider down."}
    )
    assert decision.status_code == 201 and decision.json()["decided_by"] == "ben"
    listed = api("get", f"{space.pk}/entries/").json()
    assert listed["count"] == 3 and "body" not in listed["results"][0]
    handbook = next(r for r in listed["results"] if r["id"] == doc.json()["id"])
    assert handbook["body_chars"] == 1000 and len(handbook["summary"]) == 300
    assert [r["kind"] for r in api("get", f"{space.pk}/entries/?kind=decision").json()["results"]] == ["decision"]
    assert api("get", f"{space.pk}/entries/?kind=rumour").status_code == 400
    entry_url = f"{space.pk}/entries/{fact.json()['id']}/"
    assert api("get", entry_url).json()["body"] == "5 days."
    assert api("patch", entry_url, {"body": "3 days."}).json()["body"] == "3 days."
    duplicate = api("post", f"{space.pk}/entries/", {"kind": "fact", "key": "refund-days", "body": "x"})
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate_key"
    decision_url = f"{space.pk}/entries/{decision.json()['id']}/"
    changed = api("patch", decision_url, {"body": "Changed my mind."})
    assert changed.status_code == 400 and changed.json()["code"] == "append_only"
    assert api("delete", decision_url).status_code == 400
    assert api("delete", entry_url).status_code == 204
    assert api("get", entry_url).status_code == 404
    assert ContextEntry.objects.count() == 2


def test_state_put_answers_409_on_a_conflict(api, world, space):
    url = f"{space.pk}/state/incident.current/"
    first = api("put", url, {"value": {"open": True}, "expected_version": 0})
    assert first.status_code == 200 and first.json()["version"] == 1
    assert api("put", url, {"value": {"open": False}, "expected_version": 1}).json()["version"] == 2
    conflict = api("put", url, {"value": {"open": "maybe"}, "expected_version": 1})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "version_conflict" and conflict.json()["current_version"] == 2
    assert "it is at version 2, not 1" in conflict.json()["detail"]
    assert api("put", url, {"value": 1}).status_code == 400  # expected_version is required here
    detail = api("get", url).json()
    assert detail["value"] == {"open": False} and [h["version"] for h in detail["history"]] == [2, 1]
    assert api("get", f"{space.pk}/state/").json()["results"][0]["key"] == "incident.current"
    assert api("get", f"{space.pk}/state/missing/").status_code == 404
    assert api("post", url, {"value": 1, "expected_version": 2}).status_code == 405


def test_search(api, world, space):
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", title="Refunds", body="A refund.")
    results = api("get", f"{space.pk}/search/?q=refund").json()
    assert len(results) == 1 and "«refund»" in results[0]["snippet"] and results[0]["kind"] == "fact"
    assert api("get", f"{space.pk}/search/").json()["q"]
    assert api("get", f"{space.pk}/search/?q=refund&limit=x").json()["limit"]


def test_grants(api, world, space):
    agent = make_agent(world.team, "triage")
    make_agent(world.other_team, "spy")
    granted = api("post", f"{space.pk}/grants/", {"agent": "triage", "access": "read"})
    assert granted.status_code == 201 and granted.json()["agent"] == "triage"
    assert api("post", f"{space.pk}/grants/", {"agent": str(agent.pk), "access": "write"}).json()["access"] == "write"
    assert api("post", f"{space.pk}/grants/", {"agent": "spy", "access": "read"}).json()["agent"]
    assert [g["access"] for g in api("get", f"{space.pk}/grants/").json()] == ["write"]
    grant = ContextGrant.objects.get()
    assert api("delete", f"{space.pk}/grants/{grant.pk}/").status_code == 204
    assert api("delete", f"{space.pk}/grants/{grant.pk}/").status_code == 404


def test_roles_and_tokens(client, world, space):
    client.force_login(world["viewer"])
    assert client.get(f"{BASE}{space.pk}/").status_code == 200
    put = client.put(
        f"{BASE}{space.pk}/state/k/", json.dumps({"value": 1, "expected_version": 0}), content_type="application/json"
    )
    assert put.status_code == 403
    client.force_login(world["outsider"])
    assert client.get(f"{BASE}{space.pk}/").status_code == 404
    client.logout()
    _, secret = token_create(actor=world["operator"], team=world.team, name="reader", scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get(f"{BASE}{space.pk}/state/", **auth).status_code == 200
    refused = client.put(
        f"{BASE}{space.pk}/state/k/",
        json.dumps({"value": 1, "expected_version": 0}),
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 403 and not ContextState.objects.exists()
