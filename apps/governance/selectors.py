"""Reads of secrets (metadata only: no selector ever decrypts) and their grants.

Team secrets are seen by whoever sees the team (members, object grants, auditors, admins).
Organisation secrets (team None: provider API keys) are seen by platform admins and security
auditors only, and never through an API token, which is bound to one team.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.apps import apps
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.permissions import has_perm
from apps.accounts.selectors import team_list
from apps.core.exceptions import ServiceError

from .models import GranteeType, Secret, SecretGrant

# What each grantee type points at; looked up lazily so tools and agents may import this app.
GRANTEE_MODELS = {
    GranteeType.PROVIDER: "catalog.Provider",
    GranteeType.TOOL: "tools.Tool",
    GranteeType.AGENT: "agents.Agent",
}


def grantee_model(grantee_type: str):
    """Return the model class for a grantee type; raise ServiceError naming grantee_type if unknown."""
    if grantee_type not in GRANTEE_MODELS:
        raise ServiceError(
            f"'{grantee_type}' is not a grantee type: use one of {', '.join(GranteeType.values)}.",
            field="grantee_type",
        )
    return apps.get_model(GRANTEE_MODELS[grantee_type])


def sees_org_secrets(user) -> bool:
    """Return whether the user may see organisation secrets (platform admins and security auditors)."""
    # "team.view" without a team is the organisation-wide read: only org roles hold it, never a token.
    return has_perm(user, "team.view", None)


def secret_list(*, user, team=None, scope: str | None = None) -> QuerySet[Secret]:
    """Return the secrets the user may see, narrowed to a team (instance or slug) or a scope (team/org)."""
    visible = Q(team__in=team_list(user=user))
    if sees_org_secrets(user):
        visible |= Q(team__isnull=True)
    qs = Secret.objects.filter(visible)
    if team is not None:
        qs = qs.filter(team__slug=team) if isinstance(team, str) else qs.filter(team=team)
    if scope == "org":
        qs = qs.filter(team__isnull=True)
    elif scope == "team":
        qs = qs.filter(team__isnull=False)
    elif scope:
        raise ServiceError(f"Unknown scope '{scope}': use 'team' or 'org'.", field="scope")
    return qs.select_related("team", "created_by").prefetch_related("grants").order_by("team__slug", "name")


def secret_get(*, user, pk: int) -> Secret:
    """Return the secret if the user may see it, else raise Http404."""
    try:
        return secret_list(user=user).get(pk=pk)
    except Secret.DoesNotExist:
        raise Http404("No such secret.") from None


def secret_resolve(*, team, name: str, field: str = "secret") -> Secret:
    """Return the secret a spec names: the team's secret, else the organisation's; never another team's.

    Raise ServiceError naming field when neither exists, so spec validation points at the input.
    """
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ServiceError("Name a secret (e.g. 'crm-api-key'): create it under Secrets first.", field=field)
    found = None
    if team is not None:
        found = Secret.objects.select_related("team").filter(team=team, name=name).first()
    if found is None:
        found = Secret.objects.filter(team__isnull=True, name=name).first()
    if found is None:
        where = f"team {team.slug}" if team is not None else "the organisation"
        raise ServiceError(
            f"There is no secret '{name}' in {where}: create it under Secrets, or fix the name.", field=field
        )
    return found


def grant_list(
    *, user, secret: Secret | int | None = None, grantee_type: str | None = None, grantee_id: int | None = None
) -> QuerySet[SecretGrant]:
    """Return the grants of the secrets the user may see, optionally of one secret or one grantee."""
    qs = SecretGrant.objects.filter(secret__in=secret_list(user=user).values("pk"))
    if secret is not None:
        qs = qs.filter(secret=secret)
    if grantee_type:
        qs = qs.filter(grantee_type=grantee_type)
    if grantee_id is not None:
        qs = qs.filter(grantee_id=grantee_id)
    return qs.select_related("secret", "secret__team", "created_by").order_by("secret__name", "grantee_type", "pk")


def grant_get(*, user, pk: int) -> SecretGrant:
    """Return the grant if the user may see its secret, else raise Http404."""
    try:
        return grant_list(user=user).get(pk=pk)
    except SecretGrant.DoesNotExist:
        raise Http404("No such grant.") from None


def _label(grantee_type: str, obj) -> str:
    if grantee_type == GranteeType.PROVIDER:
        return f"provider {obj.name}"
    return f"{grantee_type} {obj.team.slug}/{obj.name}"


def grantee_get(*, user, grantee_type: str, grantee_id: int):
    """Return the provider, tool or agent a grant would name, if the user may see it; else ServiceError."""
    model = grantee_model(grantee_type)
    qs = model.objects.all()
    if grantee_type != GranteeType.PROVIDER:  # tools and agents belong to teams; providers are organisation-wide
        qs = qs.filter(team__in=team_list(user=user)).select_related("team")
    obj = qs.filter(pk=grantee_id).first()
    if obj is None:
        raise ServiceError(f"There is no {grantee_type} #{grantee_id} you can see: check the id.", field="grantee_id")
    return obj


def grantee_labels(grants: Iterable[SecretGrant]) -> dict[tuple[str, int], str]:
    """Return a readable label per (grantee_type, grantee_id), one query per grantee type."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for grant in grants:
        wanted[grant.grantee_type].add(grant.grantee_id)
    labels: dict[tuple[str, int], str] = {}
    for grantee_type, ids in wanted.items():
        model = grantee_model(grantee_type)
        qs = model.objects.filter(pk__in=ids)
        if grantee_type != GranteeType.PROVIDER:
            qs = qs.select_related("team")
        found = {obj.pk: _label(grantee_type, obj) for obj in qs}
        for pk in ids:
            labels[(grantee_type, pk)] = found.get(pk, f"{grantee_type} #{pk} (deleted)")
    return labels


def grantee_label(grant: SecretGrant) -> str:
    """Return the readable label of one grant's grantee."""
    return grantee_labels([grant])[(grant.grantee_type, grant.grantee_id)]


def grantee_candidates(*, user, secret: Secret) -> list[tuple[str, str]]:
    """Return ("<type>:<id>", label) for what the secret may still be granted to.

    A team secret goes to the team's tools and agents; an organisation secret also to providers
    and to the tools and agents of any team the user sees.
    """
    taken = {(g.grantee_type, g.grantee_id) for g in secret.grants.all()}
    teams = team_list(user=user)
    if secret.team_id is not None:
        teams = teams.filter(pk=secret.team_id)
    choices: list[tuple[str, str]] = []
    types = [GranteeType.TOOL, GranteeType.AGENT]
    if secret.team_id is None:
        types.insert(0, GranteeType.PROVIDER)
    for grantee_type in types:
        model = grantee_model(grantee_type)
        if grantee_type == GranteeType.PROVIDER:
            qs = model.objects.order_by("name")
        else:
            qs = model.objects.filter(team__in=teams).select_related("team").order_by("team__slug", "name")
        choices += [
            (f"{grantee_type}:{obj.pk}", _label(grantee_type, obj)) for obj in qs if (grantee_type, obj.pk) not in taken
        ]
    return choices
