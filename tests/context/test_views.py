"""Context pages: the list, a space with its sections and search, entries, state with conflicts, grants."""

from apps.audit.models import AuditEvent
from apps.context import services
from apps.context.models import ContextEntry, ContextGrant, ContextSpace, ContextState
from tests.context.conftest import make_agent


def page(response) -> str:
    return response.content.decode()


def test_builders_create_spaces_from_the_list(client, world):
    client.force_login(world["builder"])
    assert "New context space" in page(client.get("/context/"))
    response = client.post("/context/new/", {"name": "ops-notes", "description": "Runbooks."})
    space = ContextSpace.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/context/{space.pk}/"
    assert space.team == world.team and 'data-space="ops-notes"' in page(client.get("/context/"))
    duplicate = client.post("/context/new/", {"name": "ops-notes"})
    assert duplicate.status_code == 400 and "already exists" in page(duplicate)
    client.force_login(world["operator"])
    listing = page(client.get("/context/"))
    assert 'data-space="ops-notes"' in listing and "New context space" not in listing
    assert client.get("/context/new/").status_code == 403


def test_viewers_read_without_forms(client, world, space):
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", key="k", title="A fact", body="b")
    client.force_login(world["viewer"])
    detail = page(client.get(f"/context/{space.pk}/"))
    assert "A fact" in detail and "Read only" in detail
    assert "Add a fact" not in detail and 'id="state-form"' not in detail and 'id="grant-form"' not in detail
    assert client.get(f"/context/{space.pk}/entries/new/?kind=fact").status_code == 403


def test_operators_add_and_edit_entries_and_record_decisions(client, world, space):
    client.force_login(world["operator"])
    form = page(client.get(f"/context/{space.pk}/entries/new/?kind=document"))
    assert 'value="document" selected' in form
    created = client.post(
        f"/context/{space.pk}/entries/new/?kind=fact",
        {"kind": "fact", "key": "refund-days", "title": "Refunds", "body": "5 days.", "metadata": '{"source": "wiki"}'},
    )
    entry = ContextEntry.objects.get()
    assert created.status_code == 302 and entry.metadata == {"source": "wiki"} and entry.author == "oscar"
    assert "5 days." in page(client.get(f"/context/{space.pk}/entries/{entry.pk}/"))
    bad = client.post(
        f"/context/{space.pk}/entries/new/?kind=fact", {"kind": "fact", "key": "refund-days", "body": "again"}
    )
    assert bad.status_code == 400 and 'data-field="key"' in page(bad) and "already a fact" in page(bad)
    broken = client.post(f"/context/{space.pk}/entries/new/?kind=fact", {"kind": "fact", "body": "x", "metadata": "{"})
    assert broken.status_code == 400 and 'data-field="metadata"' in page(broken)
    edited = client.post(
        f"/context/{space.pk}/entries/{entry.pk}/edit/", {"key": "refund-days", "title": "Refunds", "body": "3 days."}
    )
    entry.refresh_from_db()
    assert edited.status_code == 302 and entry.body == "3 days." and entry.kind == "fact"
    decision = client.post(
        f"/context/{space.pk}/entries/new/?kind=decision",
        {"kind": "decision", "title": "Refunds over 500 need a person", "rationale": "Fraud.", "decided_by": ""},
    )
    assert decision.status_code == 302
    recorded = ContextEntry.objects.get(kind="decision")
    detail = page(client.get(f"/context/{space.pk}/"))
    assert f'data-decision="{recorded.pk}"' in detail and "Refunds over 500 need a person" in detail
    # Decisions are append-only: no edit form, and deleting one is refused.
    assert client.get(f"/context/{space.pk}/entries/{recorded.pk}/edit/").status_code == 302
    refused = client.post(f"/context/{space.pk}/entries/{recorded.pk}/delete/", follow=True)
    assert "append-only" in page(refused) and ContextEntry.objects.filter(kind="decision").exists()
    client.post(f"/context/{space.pk}/entries/{entry.pk}/delete/")
    assert not ContextEntry.objects.filter(kind="fact").exists()


def test_untrusted_text_is_shown_escaped(client, world, space):
    body = '<script>alert("x")</script> refund'
    entry = services.context_entry_add(actor=world["operator"], space=space, kind="fact", title="<b>t</b>", body=body)
    services.context_state_write(actor=world["operator"], space=space, key="k", value={"html": "<img src=x>"})
    client.force_login(world["viewer"])
    for url in (
        f"/context/{space.pk}/entries/{entry.pk}/",
        f"/context/{space.pk}/?q=refund",
        f"/context/{space.pk}/state/k/",
    ):
        html = page(client.get(url))
        assert "<script>alert" not in html and "<img src=x>" not in html and "<b>t</b>" not in html, url
    assert "&lt;script&gt;" in page(client.get(f"/context/{space.pk}/entries/{entry.pk}/"))


def test_search_on_the_space_page(client, world, space):
    services.context_entry_add(
        actor=world["operator"], space=space, kind="fact", title="Refunds", body="Refunds take 5 days."
    )
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", title="Greeting", body="Hello.")
    client.force_login(world["viewer"])
    found = page(client.get(f"/context/{space.pk}/?q=refunds"))
    assert found.count("data-result=") == 1 and "«Refunds»" in found
    assert "Nothing matches" in page(client.get(f"/context/{space.pk}/?q=unicorn"))


def test_state_writes_and_a_conflict_shows_both_values(client, world, space):
    client.force_login(world["operator"])
    created = client.post(
        f"/context/{space.pk}/state/", {"key": "incident", "value": '{"open": true}', "expected_version": "0"}
    )
    assert created.status_code == 302 and created["Location"] == f"/context/{space.pk}/state/incident/"
    state_page = page(client.get(f"/context/{space.pk}/state/incident/"))
    assert 'data-testid="version">1<' in state_page and 'name="expected_version" value="1"' in state_page
    # Someone else writes version 2 while the operator still looks at version 1.
    services.context_state_write(actor=world["builder"], space=space, key="incident", value={"open": False})
    conflict = client.post(
        f"/context/{space.pk}/state/incident/",
        {"key": "incident", "value": '{"open": "maybe"}', "expected_version": "1"},
    )
    html = page(conflict)
    assert conflict.status_code == 409 and "changed meanwhile: it is at version 2, not 1" in html
    assert "&quot;open&quot;: false" in html  # the current value
    assert "&quot;open&quot;: &quot;maybe&quot;" in html  # what was typed, kept
    assert 'name="expected_version" value="2"' in html
    assert ContextState.objects.get().value == {"open": False}
    saved = client.post(
        f"/context/{space.pk}/state/incident/",
        {"key": "incident", "value": '{"open": "maybe"}', "expected_version": "2"},
    )
    assert saved.status_code == 302 and ContextState.objects.get().version == 3
    history = page(client.get(f"/context/{space.pk}/state/incident/"))
    assert all(f'data-version="{v}"' in history for v in (1, 2, 3))
    exists = client.post(f"/context/{space.pk}/state/", {"key": "incident", "value": "1", "expected_version": "0"})
    assert exists.status_code == 409 and "already exists at version 3" in page(exists)
    invalid = client.post(f"/context/{space.pk}/state/", {"key": "new", "value": "{nope", "expected_version": "0"})
    assert invalid.status_code == 400 and 'data-field="value"' in page(invalid)
    assert client.get(f"/context/{space.pk}/state/missing/").status_code == 404


def test_builders_grant_and_revoke_agents(client, world, space):
    agent = make_agent(world.team, "triage", [{"space": "support-kb", "access": "write"}])
    client.force_login(world["builder"])
    detail = page(client.get(f"/context/{space.pk}/"))
    assert 'data-request="triage"' in detail and "none: it will be refused" in detail
    response = client.post(f"/context/{space.pk}/grants/", {"agent": agent.pk, "access": "write"})
    assert response.status_code == 302 and ContextGrant.objects.get().access == "write"
    assert 'data-grant="triage"' in page(client.get(f"/context/{space.pk}/"))
    unknown = client.post(f"/context/{space.pk}/grants/", {"agent": 999, "access": "read"})
    assert unknown.status_code == 400
    client.force_login(world["operator"])
    assert client.post(f"/context/{space.pk}/grants/", {"agent": agent.pk, "access": "read"}).status_code == 403
    client.force_login(world["builder"])
    grant = ContextGrant.objects.get()
    assert client.post(f"/context/{space.pk}/grants/{grant.pk}/revoke/").status_code == 302
    assert not ContextGrant.objects.exists()


def test_description_and_delete(client, world, space):
    client.force_login(world["builder"])
    client.post(f"/context/{space.pk}/edit/", {"description": "Changed."})
    space.refresh_from_db()
    assert space.description == "Changed."
    assert "Delete context space" in page(client.get(f"/context/{space.pk}/delete/"))
    assert client.post(f"/context/{space.pk}/delete/").status_code == 302
    assert not ContextSpace.objects.exists() and AuditEvent.objects.filter(action="context.space_delete").exists()


def test_another_teams_space_is_not_found(client, world, space):
    client.force_login(world["outsider"])
    assert 'data-space="support-kb"' not in page(client.get("/context/"))
    for url in (f"/context/{space.pk}/", f"/context/{space.pk}/delete/"):
        assert client.get(url).status_code == 404
    assert (
        client.post(f"/context/{space.pk}/state/", {"key": "k", "value": "1", "expected_version": "0"}).status_code
        == 404
    )
