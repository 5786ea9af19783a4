"""The prompt API: create, drafts, versions, labels, rendering, diff, spec files; clear 400s."""

import json

import pytest

from apps.prompts.models import Prompt, PromptVersion
from tests.prompts.factories import SPEC, prompt_with_versions


@pytest.fixture
def api(client, world):
    client.force_login(world["builder"])

    def call(method, path, data=None):
        kwargs = {"data": json.dumps(data), "content_type": "application/json"} if data is not None else {}
        return getattr(client, method)(f"/api/v1/prompts/{path}", **kwargs)

    return call


def test_create_list_and_filters(api, world, prompt):
    body = api("get", "?team=payments&q=greet").json()
    assert body["count"] == 1 and body["results"][0]["latest_version"] == "1.0.0"
    assert api("get", "?team=support").json()["count"] == 0
    created = api("post", "", {"team": "payments", "name": "short", "spec": {"template": "Be brief."}})
    assert created.status_code == 201 and created.json()["owner"] == "ben"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"template": "Hi {{ who }}"}, "template"),
        ({"template": "Hi", "variables": [{"name": "who"}]}, "variables"),
        ({"template": "{{a}}", "variables": [{"name": "a"}, {"name": "a"}]}, "variables"),
        ({"template": "x" * 100_001}, "template"),
        ({"template": "x", "extra": 1}, "extra"),
        ({"template": ["x"]}, "template"),
    ],
)
def test_bad_prompts_answer_400_naming_the_field(api, spec, field):
    response = api("post", "", {"team": "payments", "name": "p", "spec": spec})
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Prompt.objects.exists()


def test_versions_are_read_only_and_diffable(api, world):
    prompt = prompt_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0"))
    assert [v["version"] for v in api("get", f"{prompt.pk}/versions/").json()["results"]] == ["1.1.0", "1.0.0"]
    for method in ("patch", "put", "delete"):
        assert api(method, f"{prompt.pk}/versions/1.0.0/", {"spec": {"template": "x"}}).status_code == 405
    assert PromptVersion.objects.get(version="1.0.0").spec["template"] == SPEC["template"]
    changes = api("get", f"{prompt.pk}/diff/?a=1.0.0&b=1.1.0").json()["changes"]
    assert [c["path"] for c in changes] == ["template"]


def test_patch_publish_and_labels(api, prompt):
    assert api("patch", f"{prompt.pk}/", {"spec": {"template": "Hi {{ x }}"}}).json()["template"]
    assert api("patch", f"{prompt.pk}/", {"spec": {**SPEC, "template": SPEC["template"] + "!"}}).status_code == 200
    assert api("post", f"{prompt.pk}/publish/", {"version": "1.0.0"}).json()["version"]
    assert api("post", f"{prompt.pk}/publish/", {"version": "1.1.0"}).status_code == 201
    labels = api(
        "post",
        f"{prompt.pk}/labels/",
        {"name": "staging", "version": "1.0.0", "candidate": "1.1.0", "rollout_percent": 50},
    )
    assert labels.json() == [
        {**labels.json()[0], "name": "staging", "version": "1.0.0", "candidate": "1.1.0", "rollout_percent": 50}
    ]
    bad = api("post", f"{prompt.pk}/labels/", {"name": "staging", "version": "1.0.0", "rollout_percent": 50})
    assert bad.status_code == 400 and "candidate" in bad.json()
    assert api("get", f"{prompt.pk}/labels/").json()[0]["candidate"] == "1.1.0"
    assert api("get", f"{prompt.pk}/").json()["labels"][0]["name"] == "staging"


def test_render_a_version_a_label_or_the_draft(api, world, prompt):
    from apps.prompts.services import prompt_label_set

    prompt_label_set(actor=world["builder"], prompt=prompt, name="production", version="1.0.0")
    rendered = api("post", f"{prompt.pk}/render/", {"version": "production", "variables": {"company": "Acme"}}).json()
    assert rendered == {"version": "1.0.0", "text": "You help customers of Acme. Greet there by name."}
    draft = api("post", f"{prompt.pk}/render/", {"variables": {"company": "<b>Acme</b>", "customer": "Ada"}}).json()
    assert draft["version"] is None and "<b>Acme</b>" in draft["text"]
    missing = api("post", f"{prompt.pk}/render/", {"variables": {}})
    assert missing.status_code == 400 and "Missing required variable company" in missing.json()["variables"][0]
    assert api("post", f"{prompt.pk}/render/", {"version": "canary"}).status_code == 400


def test_export_import_and_other_teams(api, world, prompt):
    document = api("get", f"{prompt.pk}/export/?format=json&version=1.0.0").content.decode()
    created = api(
        "post",
        "import/",
        {"team": "payments", "document": document.replace('"greeting"', '"copy"'), "publish_version": "1.0.0"},
    )
    assert created.status_code == 201 and created.json()["prompt"]["name"] == "copy"
    replaced = api("post", "import/", {"team": "payments", "document": document})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    theirs = prompt_with_versions(actor=world["outsider"], team=world.other_team, name="theirs")
    assert api("get", f"{theirs.pk}/").status_code == 404
    assert api("post", f"{theirs.pk}/labels/", {"name": "production", "version": "1.0.0"}).status_code == 404
    assert api("post", "import/", {"team": "support", "document": document}).status_code == 404


def test_a_read_token_may_render_but_not_change(client, world, prompt):
    from apps.accounts.services import token_create

    _token, secret = token_create(actor=world["viewer"], team=world.team, name="reader", scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "content_type": "application/json"}
    rendered = client.post(
        f"/api/v1/prompts/{prompt.pk}/render/", data={"version": "1.0.0", "variables": {"company": "Acme"}}, **auth
    )
    assert rendered.status_code == 200 and rendered.json()["text"].startswith("You help customers of Acme.")
    refused = client.post(f"/api/v1/prompts/{prompt.pk}/publish/", data={"version": "2.0.0"}, **auth)
    assert refused.status_code == 403
