"""Tool services: validated, audited, all-or-nothing writes; immutable versions; secrets; import."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import AccessDenied, ServiceError
from apps.core.specs import dump_document
from apps.core.versioning import ImmutableVersionError, spec_hash
from apps.tools import services
from apps.tools.models import Tool, ToolVersion
from tests.tools.factories import CONTEXT_SPEC, http_spec, tool_with_versions


def events(action):
    return AuditEvent.objects.filter(action=action)


def test_create_is_audited_and_the_creator_owns_the_tool(world):
    tool = services.tool_create(actor=world["builder"], team=world.team, name="crm-lookup", spec=http_spec())
    assert tool.owner == world["builder"]
    assert tool.description == "Look up a customer in the CRM by id."  # defaults to the spec's description
    assert tool.draft_spec["config"]["timeout_s"] == 30  # normalised
    event = events("tool.create").get()
    assert event.team_slug == "payments" and event.after["name"] == "crm-lookup" and event.actor_label == "ben"


def test_viewers_and_other_teams_cannot_create(world):
    with pytest.raises(AccessDenied):
        services.tool_create(actor=world["viewer"], team=world.team, name="x", spec=http_spec())
    with pytest.raises(AccessDenied):
        services.tool_create(actor=world["outsider"], team=world.team, name="x", spec=http_spec())
    assert not Tool.objects.exists()


@pytest.mark.parametrize(
    ("name", "words"),
    [("", "Give the tool a name"), ("CRM Lookup", "not a valid tool name"), ("a" * 64, "not a valid tool name")],
)
def test_bad_names_are_refused(world, name, words):
    with pytest.raises(ServiceError) as info:
        services.tool_create(actor=world["builder"], team=world.team, name=name, spec=http_spec())
    assert info.value.field == "name" and words in info.value.message


def test_duplicate_name_in_the_team_is_refused_but_another_team_may_reuse_it(world, tool):
    with pytest.raises(ServiceError) as info:
        services.tool_create(actor=world["owner"], team=world.team, name="crm-lookup", spec=http_spec())
    assert info.value.field == "name" and "already exists" in info.value.message
    other = services.tool_create(actor=world["outsider"], team=world.other_team, name="crm-lookup", spec=http_spec())
    assert other.team == world.other_team


def test_owner_must_be_a_member_of_the_team(world):
    with pytest.raises(ServiceError) as info:
        services.tool_create(actor=world["builder"], team=world.team, name="t", spec=http_spec(), owner="xavier")
    assert info.value.field == "owner" and "not a member" in info.value.message
    tool = services.tool_create(actor=world["builder"], team=world.team, name="t", spec=http_spec(), owner="vera")
    assert tool.owner == world["viewer"]
    services.tool_set_owner(actor=world["owner"], tool=tool, owner=world["owner"])
    assert events("tool.set_owner").get().after == {"owner": "olivia"}


def test_invalid_draft_changes_nothing(world, tool):
    before = dict(tool.draft_spec)
    count = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as info:
        services.tool_update_draft(actor=world["builder"], tool=tool, spec=http_spec(parameters={"type": "array"}))
    assert info.value.field == "parameters"
    tool.refresh_from_db()
    assert tool.draft_spec == before and AuditEvent.objects.count() == count


def test_publish_freezes_the_draft_with_its_facts(world):
    tool = services.tool_create(
        actor=world["builder"], team=world.team, name="crm-update", spec=http_spec(side_effect="write")
    )
    version = services.tool_publish(actor=world["builder"], tool=tool, version="1.0.0", notes="First")
    assert (version.kind, version.side_effect, version.permissions_required) == ("http", "write", ["crm.read"])
    assert version.content_hash == spec_hash(tool.draft_spec) and version.author == world["builder"]
    assert events("tool.publish").get().after["version"] == "1.0.0"


def test_versions_must_increase_and_change(world, tool):
    with pytest.raises(ServiceError) as info:
        services.tool_publish(actor=world["builder"], tool=tool, version="1.0.1")
    assert info.value.field == "version" and "Nothing changed" in info.value.message
    services.tool_update_draft(actor=world["builder"], tool=tool, spec=http_spec(description="New words."))
    for version in ("1.0.0", "0.9.0", "banana"):
        with pytest.raises(ServiceError) as info:
            services.tool_publish(actor=world["builder"], tool=tool, version=version)
        assert info.value.field == "version"
    assert tool.versions.count() == 1


def test_published_versions_cannot_be_changed_or_deleted_through_the_orm(tool):
    version = tool.versions.get()
    version.release_notes = "rewritten"
    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        ToolVersion.objects.filter(pk=version.pk).update(release_notes="rewritten")
    with pytest.raises(ImmutableVersionError):
        version.delete()
    with pytest.raises(ImmutableVersionError):
        ToolVersion.objects.filter(pk=version.pk).delete()
    assert ToolVersion.objects.get(pk=version.pk).release_notes == "Release 1.0.0"


def _with_secret(**headers):
    return http_spec(secrets=["crm-key"], config={"url": "https://crm.example.com/c/{id}", "headers": headers})


def test_secrets_must_exist_in_the_team(world):
    with pytest.raises(ServiceError) as info:
        services.tool_create(actor=world["builder"], team=world.team, name="t", spec=_with_secret())
    assert info.value.field == "secrets" and "no secret 'crm-key'" in info.value.message


def test_another_teams_secret_is_not_found(world):
    from apps.governance.services import secret_create

    secret_create(actor=world["outsider"], team=world.other_team, name="crm-key", value="theirs")
    with pytest.raises(ServiceError) as info:
        services.tool_create(actor=world["builder"], team=world.team, name="t", spec=_with_secret())
    assert info.value.field == "secrets" and "team payments" in info.value.message


def test_publishing_needs_the_secret_granted_to_this_tool(world, secret, grant):
    tool = services.tool_create(
        actor=world["builder"], team=world.team, name="t", spec=_with_secret(Authorization="Bearer {{secrets.crm-key}}")
    )
    with pytest.raises(ServiceError) as info:
        services.tool_publish(actor=world["builder"], tool=tool, version="1.0.0")
    assert info.value.field == "secrets" and "not granted to the tool t" in info.value.message
    other = services.tool_create(actor=world["builder"], team=world.team, name="other", spec=_with_secret())
    grant(secret, other)  # a grant to another tool does not count
    with pytest.raises(ServiceError):
        services.tool_publish(actor=world["builder"], tool=tool, version="1.0.0")
    grant(secret, tool)
    version = services.tool_publish(actor=world["builder"], tool=tool, version="1.0.0")
    assert version.spec["secrets"] == ["crm-key"]
    assert "s3cret-value" not in str(version.spec)


def test_organisation_secrets_can_be_used(world, grant):
    from apps.governance.services import secret_create

    org_secret = secret_create(actor=world["admin"], team=None, name="crm-key", value="org-value")
    tool = services.tool_create(actor=world["builder"], team=world.team, name="t", spec=_with_secret())
    from apps.governance.services import secret_grant

    secret_grant(actor=world["admin"], secret=org_secret, grantee_type="tool", grantee=tool)
    assert services.tool_publish(actor=world["builder"], tool=tool, version="1.0.0").version == "1.0.0"


def test_deprecation_is_audited_and_blocks_new_versions(world, tool):
    with pytest.raises(ServiceError) as info:
        services.tool_deprecate(actor=world["builder"], tool=tool, reason=" ")
    assert info.value.field == "reason"
    services.tool_deprecate(actor=world["builder"], tool=tool, reason="Use crm-v2.")
    assert tool.deprecated and tool.deprecated_at is not None
    assert events("tool.deprecate").get().after == {"deprecated": True, "reason": "Use crm-v2."}
    services.tool_update_draft(actor=world["builder"], tool=tool, spec=http_spec(description="Changed."))
    with pytest.raises(ServiceError) as info:
        services.tool_publish(actor=world["builder"], tool=tool, version="2.0.0")
    assert "undeprecate it" in info.value.message
    services.tool_undeprecate(actor=world["builder"], tool=tool)
    assert not tool.deprecated and events("tool.undeprecate").exists()
    with pytest.raises(ServiceError):
        services.tool_undeprecate(actor=world["builder"], tool=tool)


def document(name="crm-lookup", spec=None, **metadata) -> str:
    return dump_document(kind="Tool", metadata={"name": name, **metadata}, spec=spec or http_spec())


def test_import_creates_a_tool_and_publishes_it(world):
    tool, version, created = services.tool_import(
        actor=world["builder"], team=world.team, text=document(description="From a file"), publish_version="1.0.0"
    )
    assert created and version.version == "1.0.0" and tool.description == "From a file"
    assert events("tool.create").exists() and events("tool.publish").exists()


def test_import_replaces_the_draft_of_an_existing_tool(world, tool):
    text = document(spec=http_spec(description="Imported words."), owner="olivia")
    same, version, created = services.tool_import(actor=world["builder"], team=world.team, text=text)
    assert same.pk == tool.pk and not created and version is None
    tool.refresh_from_db()
    assert tool.draft_spec["description"] == "Imported words." and tool.owner == world["owner"]
    assert tool.versions.count() == 1  # the draft only


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not: [valid", "document"),
        (document(spec={**http_spec(), "colour": "red"}), "spec.colour"),
        (document(spec=http_spec(kind="ftp")), "spec.kind"),
        (document(name="Bad Name"), "metadata.name"),
        (document(owner="xavier"), "metadata.owner"),
        (dump_document(kind="Prompt", metadata={"name": "p"}, spec={"template": "x"}), "kind"),
        (document(spec=_with_secret()), "spec.secrets"),
    ],
)
def test_a_bad_import_names_the_field_and_writes_nothing(world, text, field):
    count = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as info:
        services.tool_import(actor=world["builder"], team=world.team, text=text, publish_version="1.0.0")
    assert info.value.field == field, info.value.message
    assert not Tool.objects.exists() and AuditEvent.objects.count() == count


def test_a_refused_publish_rolls_back_the_whole_import(world):
    tool = tool_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "2.0.0"))
    draft = dict(tool.draft_spec)
    count = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as info:
        services.tool_import(
            actor=world["builder"],
            team=world.team,
            text=document(spec=http_spec(description="Newer.")),
            publish_version="1.5.0",
        )
    assert info.value.field == "version" and "greater than" in info.value.message
    tool.refresh_from_db()
    assert tool.draft_spec == draft and AuditEvent.objects.count() == count


def test_a_new_tool_with_secrets_cannot_be_published_on_import(world, secret):
    with pytest.raises(ServiceError) as info:
        services.tool_import(
            actor=world["builder"],
            team=world.team,
            text=document(name="t", spec=_with_secret()),
            publish_version="1.0.0",
        )
    assert info.value.field == "secrets"
    assert not Tool.objects.filter(name="t").exists()  # the creation rolled back with the publish


def test_exported_versions_import_identically_elsewhere(world, tool):
    from apps.core.drafts import document_metadata

    version = tool.versions.get()
    text = dump_document(kind="Tool", metadata=document_metadata(tool), spec=version.spec, fmt="json")
    copy, copied, _ = services.tool_import(
        actor=world["outsider"], team=world.other_team, text=text.replace('"ben"', "null"), publish_version="1.0.0"
    )
    assert copy.team == world.other_team and copied.content_hash == version.content_hash


def test_import_into_another_team_is_refused(world):
    with pytest.raises(AccessDenied):
        services.tool_import(actor=world["builder"], team=world.other_team, text=document())


def test_context_tools_are_tools_too(world):
    tool = services.tool_create(actor=world["builder"], team=world.team, name="facts", spec=CONTEXT_SPEC)
    assert services.tool_publish(actor=world["builder"], tool=tool, version="0.1.0").kind == "context"


@pytest.mark.parametrize("value", [".nan", ".inf", "2024-01-01"])
def test_yaml_values_json_cannot_hold_are_refused(world, value):
    text = (
        "apiVersion: fleetdeck/v1\nkind: Tool\nmetadata: {name: t}\n"
        f"spec:\n  description: d\n  kind: context\n  config: {{operation: read, space: s}}\n"
        f"  parameters: {{type: object, properties: {{}}, default: {value}}}\n"
    )
    with pytest.raises(ServiceError) as info:
        services.tool_import(actor=world["builder"], team=world.team, text=text)
    assert info.value.field == "spec" and "quote dates" in info.value.message
    assert not Tool.objects.exists()
