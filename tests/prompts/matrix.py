"""Permission-matrix rows for the prompts area (see tests/matrix.py)."""

from tests.matrix import everyone

EDIT = dict(outsider=404, viewer=403, operator=403, auditor=403)
READ = dict(outsider=404)
A = dict(anonymous=401)

# No braces here: the matrix fills {placeholders} in row data.
IMPORT_DOCUMENT = """apiVersion: fleetdeck/v1
kind: Prompt
metadata:
  name: imported-prompt
spec:
  template: Answer briefly and politely.
"""
EDITOR_FORM = {"action": "save_draft", "template": "Answer briefly.", "variables": "[]"}

PAGES = [
    ("prompt_list", "get", "/prompts/", None, everyone(200)),
    ("prompt_list_filtered", "get", "/prompts/?q=greet&team=payments", None, everyone(200)),
    ("prompt_create_page", "get", "/prompts/new/", None, everyone(200)),
    (
        "prompt_create",
        "post",
        "/prompts/new/",
        {**EDITOR_FORM, "name": "new-prompt", "description": ""},
        everyone(403, outsider=302, builder=302, owner=302, admin=302),
    ),
    ("prompt_detail", "get", "/prompts/{prompt}/", None, everyone(200, **READ)),
    ("prompt_save_draft", "post", "/prompts/{prompt}/", EDITOR_FORM, everyone(302, **EDIT)),
    ("prompt_publish", "post", "/prompts/{prompt}/", {"action": "publish", "version": "2.0.0"}, everyone(302, **EDIT)),
    (
        "prompt_set_label",
        "post",
        "/prompts/{prompt}/",
        {"action": "set_label", "name": "staging", "version": "1.0.0", "candidate": "1.1.0", "rollout_percent": "10"},
        everyone(302, **EDIT),
    ),
    (
        "prompt_set_owner",
        "post",
        "/prompts/{prompt}/",
        {"action": "set_owner", "owner": "olivia"},
        everyone(302, **EDIT),
    ),
    ("promptversion_detail", "get", "/prompts/{prompt}/versions/1.0.0/", None, everyone(200, **READ)),
    ("promptversion_missing", "get", "/prompts/{prompt}/versions/9.9.9/", None, everyone(404)),
    ("prompt_diff", "get", "/prompts/{prompt}/diff/", None, everyone(200, **READ)),
    ("prompt_export", "get", "/prompts/{prompt}/export/", None, everyone(200, **READ)),
    ("prompt_import_page", "get", "/prompts/import/", None, everyone(200)),
    (
        "prompt_import",
        "post",
        "/prompts/import/",
        {"document": IMPORT_DOCUMENT, "publish_version": "1.0.0"},
        everyone(403, outsider=302, builder=302, owner=302, admin=302),
    ),
]

API = [
    ("api_prompts", "get", "/api/v1/prompts/", None, everyone(200, **A)),
    ("api_prompts_filtered", "get", "/api/v1/prompts/?team=payments&q=greet", None, everyone(200, **A)),
    (
        "api_prompt_create",
        "post",
        "/api/v1/prompts/",
        {"team": "payments", "name": "api-prompt", "spec": {"template": "Be brief."}},
        everyone(201, **A, **EDIT),
    ),
    ("api_prompt", "get", "/api/v1/prompts/{prompt}/", None, everyone(200, **A, **READ)),
    ("api_prompt_patch", "patch", "/api/v1/prompts/{prompt}/", {"description": "Changed."}, everyone(200, **A, **EDIT)),
    ("api_prompt_put", "put", "/api/v1/prompts/{prompt}/", {"description": "Changed."}, everyone(405, **A)),
    ("api_prompt_delete", "delete", "/api/v1/prompts/{prompt}/", None, everyone(405, **A)),
    (
        "api_prompt_publish",
        "post",
        "/api/v1/prompts/{prompt}/publish/",
        {"version": "2.0.0"},
        everyone(201, **A, **EDIT),
    ),
    ("api_prompt_versions", "get", "/api/v1/prompts/{prompt}/versions/", None, everyone(200, **A, **READ)),
    ("api_promptversion", "get", "/api/v1/prompts/{prompt}/versions/1.0.0/", None, everyone(200, **A, **READ)),
    ("api_promptversion_patch", "patch", "/api/v1/prompts/{prompt}/versions/1.0.0/", {"spec": {}}, everyone(405, **A)),
    ("api_promptversion_delete", "delete", "/api/v1/prompts/{prompt}/versions/1.0.0/", None, everyone(405, **A)),
    ("api_prompt_diff", "get", "/api/v1/prompts/{prompt}/diff/?a=1.0.0&b=1.1.0", None, everyone(200, **A, **READ)),
    ("api_prompt_export", "get", "/api/v1/prompts/{prompt}/export/?format=json", None, everyone(200, **A, **READ)),
    (
        "api_prompt_import",
        "post",
        "/api/v1/prompts/import/",
        {"team": "payments", "document": IMPORT_DOCUMENT},
        everyone(201, **A, **EDIT),
    ),
    ("api_prompt_labels", "get", "/api/v1/prompts/{prompt}/labels/", None, everyone(200, **A, **READ)),
    (
        "api_prompt_label_set",
        "post",
        "/api/v1/prompts/{prompt}/labels/",
        {"name": "production", "version": "1.1.0"},
        everyone(200, **A, **EDIT),
    ),
    (
        "api_prompt_render",
        "post",
        "/api/v1/prompts/{prompt}/render/",
        {"version": "production", "variables": {"company": "Acme"}},
        everyone(200, **A, **READ),
    ),
]


def setup(world) -> dict:
    """Create a prompt in payments with versions 1.0.0 and 1.1.0, a production label and an unpublished draft."""
    from apps.prompts.services import prompt_label_set
    from tests.prompts.factories import prompt_with_versions

    builder = world["builder"]
    prompt = prompt_with_versions(actor=builder, team=world.team, versions=("1.0.0", "1.1.0"), draft_change=True)
    prompt_label_set(actor=builder, prompt=prompt, name="production", version="1.0.0")
    return {"prompt": prompt.pk}
