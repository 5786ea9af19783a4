"""Permission-matrix rows for secrets (see tests/matrix.py).

Team secrets: team members and auditors see their metadata, owners manage them, another team's
secret is a 404. Organisation secrets: platform admins manage them, auditors see their metadata.
"""

from tests.matrix import everyone

OWNER_WRITE = dict(outsider=404, viewer=403, operator=403, builder=403, auditor=403)
API_OWNER_WRITE = dict(anonymous=401, **OWNER_WRITE)

PAGES = [
    ("secrets", "get", "/secrets/", None, everyone(200)),
    ("secret_detail", "get", "/secrets/{team_secret}/", None, everyone(200, outsider=404)),
    ("secret_detail_org", "get", "/secrets/{org_secret}/", None, everyone(404, auditor=200, admin=200)),
    (
        "secret_detail_other_team",
        "get",
        "/secrets/{other_secret}/",
        None,
        everyone(404, outsider=200, auditor=200, admin=200),
    ),
    # The create form acts in the current team: support for the outsider (its owner), payments for the rest.
    ("secret_create_page", "get", "/secrets/new/", None, everyone(403, outsider=200, owner=200, admin=200)),
    (
        "secret_create",
        "post",
        "/secrets/new/",
        {"scope": "team", "name": "new-secret", "description": "", "value": "s3cr3t"},
        everyone(403, outsider=302, owner=302, admin=302),
    ),
    (
        "secret_update",
        "post",
        "/secrets/{team_secret}/edit/",
        {"description": "changed"},
        everyone(302, **OWNER_WRITE),
    ),
    (
        "secret_set_value",
        "post",
        "/secrets/{team_secret}/value/",
        {"value": "n3w-valu3"},
        everyone(302, **OWNER_WRITE),
    ),
    ("secret_delete_page", "get", "/secrets/{spare_secret}/delete/", None, everyone(200, **OWNER_WRITE)),
    ("secret_delete", "post", "/secrets/{spare_secret}/delete/", None, everyone(302, **OWNER_WRITE)),
    (
        "secret_grant_create",
        "post",
        "/secrets/{team_secret}/grants/",
        {"grantee": "tool:{spare_tool}"},
        everyone(302, **OWNER_WRITE),
    ),
    (
        "secret_grant_revoke",
        "post",
        "/secrets/{team_secret}/grants/{team_grant}/revoke/",
        None,
        everyone(302, **OWNER_WRITE),
    ),
]

API = [
    ("api_secrets", "get", "/api/v1/secrets/", None, everyone(200, anonymous=401)),
    ("api_secret", "get", "/api/v1/secrets/{team_secret}/", None, everyone(200, anonymous=401, outsider=404)),
    (
        "api_secret_org",
        "get",
        "/api/v1/secrets/{org_secret}/",
        None,
        everyone(404, anonymous=401, auditor=200, admin=200),
    ),
    (
        "api_secret_create",
        "post",
        "/api/v1/secrets/",
        {"team": "payments", "name": "api-secret", "value": "s3cr3t"},
        # Another team in the body is a 400 naming the field "team".
        everyone(201, **{**API_OWNER_WRITE, "outsider": 400}),
    ),
    (
        "api_secret_create_org",
        "post",
        "/api/v1/secrets/",
        {"team": None, "name": "org-api-secret", "value": "s3cr3t"},
        everyone(403, anonymous=401, admin=201),
    ),
    (
        "api_secret_patch",
        "patch",
        "/api/v1/secrets/{team_secret}/",
        {"description": "changed"},
        everyone(200, **API_OWNER_WRITE),
    ),
    (
        "api_secret_set_value",
        "post",
        "/api/v1/secrets/{team_secret}/set-value/",
        {"value": "n3w-valu3"},
        everyone(200, **API_OWNER_WRITE),
    ),
    ("api_secret_delete", "delete", "/api/v1/secrets/{spare_secret}/", None, everyone(204, **API_OWNER_WRITE)),
    ("api_secret_grants", "get", "/api/v1/secret-grants/", None, everyone(200, anonymous=401)),
    (
        "api_secret_grant",
        "get",
        "/api/v1/secret-grants/{team_grant}/",
        None,
        everyone(200, anonymous=401, outsider=404),
    ),
    (
        "api_secret_grant_create",
        "post",
        "/api/v1/secret-grants/",
        {"secret": "{team_secret}", "grantee_type": "tool", "grantee_id": "{spare_tool}"},
        # Another team's secret in the body is a 400 naming the field "secret".
        everyone(201, **{**API_OWNER_WRITE, "outsider": 400}),
    ),
    (
        "api_secret_grant_delete",
        "delete",
        "/api/v1/secret-grants/{team_grant}/",
        None,
        everyone(204, **API_OWNER_WRITE),
    ),
]


def setup(world) -> dict:
    """Create a granted and a spare secret in payments, one in support and one organisation secret."""
    from apps.governance.models import Secret
    from apps.governance.services import secret_create, secret_grant
    from apps.tools.models import Tool

    admin = world["admin"]

    def secret(team, name):
        return Secret.objects.filter(team=team, name=name).first() or secret_create(
            actor=admin, team=team, name=name, value=f"matrix-value-{name}"
        )

    team_secret = secret(world.team, "matrix-key")
    spare = secret(world.team, "matrix-spare")
    other = secret(world.other_team, "matrix-other")
    org = secret(None, "matrix-org")
    tool, _ = Tool.objects.get_or_create(team=world.team, name="matrix-tool")
    spare_tool, _ = Tool.objects.get_or_create(team=world.team, name="matrix-spare-tool")
    grant = team_secret.grants.filter(grantee_type="tool", grantee_id=tool.pk).first() or secret_grant(
        actor=admin, secret=team_secret, grantee_type="tool", grantee=tool
    )
    return {
        "team_secret": team_secret.pk,
        "spare_secret": spare.pk,
        "other_secret": other.pk,
        "org_secret": org.pk,
        "team_grant": grant.pk,
        "spare_tool": spare_tool.pk,
    }
