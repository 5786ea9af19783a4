"""Prompt pages: the editor with detected variables and inline errors, labels, versions, spec files."""

import json

import yaml

from apps.prompts.models import Prompt, PromptLabel
from tests.prompts.factories import SPEC, prompt_with_versions

EDITOR = {"template": SPEC["template"], "variables": json.dumps(SPEC["variables"])}


def test_the_list_and_the_create_page(client, world, prompt):
    client.force_login(world["viewer"])
    page = client.get("/prompts/").content.decode()
    assert 'data-prompt="greeting"' in page and ">1.0.0<" in page and "New prompt" not in page
    client.force_login(world["builder"])
    create = client.get("/prompts/new/").content.decode()
    assert 'data-variable="company"' in create  # the starter template's variable is detected


def test_create_shows_undeclared_variables_beside_the_template(client, world):
    client.force_login(world["builder"])
    response = client.post("/prompts/new/", {"name": "p", "template": "Hi {{ who }}", "variables": "[]"})
    page = response.content.decode()
    assert response.status_code == 400
    assert 'data-field="template"' in page and "undeclared variable who: declare it or remove it" in page
    assert "used but not declared" in page and not Prompt.objects.exists()
    broken = client.post("/prompts/new/", {"name": "p", "template": "Hi", "variables": "[{"})
    assert broken.status_code == 400 and 'data-field="variables"' in broken.content.decode()
    created = client.post("/prompts/new/", {"name": "greeting", **EDITOR})
    assert created.status_code == 302 and Prompt.objects.get().draft_spec["variables"][1]["default"] == "there"


def test_declare_fills_in_the_variables_without_saving(client, world, prompt):
    client.force_login(world["builder"])
    response = client.post(
        f"/prompts/{prompt.pk}/",
        {"action": "declare", "template": "{{ a }} and {{ company }}", "variables": EDITOR["variables"]},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "&quot;name&quot;: &quot;a&quot;" in page
    assert "&quot;customer&quot;" not in page  # no longer used: dropped
    prompt.refresh_from_db()
    assert prompt.draft_spec["template"] == SPEC["template"]


def test_save_publish_and_label_from_the_detail_page(client, world, prompt):
    client.force_login(world["builder"])
    url = f"/prompts/{prompt.pk}/"
    changed = {**EDITOR, "action": "save_draft", "template": SPEC["template"] + " Thanks."}
    assert client.post(url, changed).status_code == 302
    assert client.post(url, {"action": "publish", "version": "1.1.0"}).status_code == 302
    refused = client.post(
        url,
        {
            "action": "set_label",
            "name": "production",
            "version": "1.1.0",
            "candidate": "1.0.0",
            "rollout_percent": "10",
        },
    )
    assert refused.status_code == 400 and "must be newer" in refused.content.decode()
    ok = client.post(
        url,
        {
            "action": "set_label",
            "name": "production",
            "version": "1.0.0",
            "candidate": "1.1.0",
            "rollout_percent": "25",
        },
    )
    assert ok.status_code == 302
    label = PromptLabel.objects.get()
    assert (label.version.version, label.candidate.version, label.rollout_percent) == ("1.0.0", "1.1.0", 25)
    page = client.get(url).content.decode()
    assert 'data-label="production"' in page and "25%" in page


def test_viewers_read_only(client, world, prompt):
    client.force_login(world["viewer"])
    page = client.get(f"/prompts/{prompt.pk}/").content.decode()
    assert "Read only" in page and "editor-form" not in page and "label-form" not in page
    assert client.post(f"/prompts/{prompt.pk}/", {**EDITOR, "action": "save_draft"}).status_code == 403
    version = client.get(f"/prompts/{prompt.pk}/versions/1.0.0/").content.decode()
    assert prompt.versions.get().content_hash in version and 'name="action"' not in version
    assert client.post(f"/prompts/{prompt.pk}/versions/1.0.0/").status_code == 405


def test_diff_export_and_import(client, world):
    prompt = prompt_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0"))
    client.force_login(world["builder"])
    diff = client.get(f"/prompts/{prompt.pk}/diff/?a=1.0.0&b=1.1.0").content.decode()
    assert "<code>template</code>" in diff and "Revision 1." in diff
    exported = client.get(f"/prompts/{prompt.pk}/export/?version=1.1.0")
    document = yaml.safe_load(exported.content)
    assert document["kind"] == "Prompt" and document["spec"] == prompt.versions.get(version="1.1.0").spec
    document["metadata"]["name"] = "copy"
    assert client.post("/prompts/import/", {"document": yaml.safe_dump(document)}).status_code == 302
    bad = client.post("/prompts/import/", {"document": yaml.safe_dump({**document, "kind": "Tool"})})
    assert bad.status_code == 400 and "kind must be one of Prompt" in bad.content.decode()
    assert Prompt.objects.filter(name="copy").exists()
