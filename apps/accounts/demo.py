"""The demo organisation seeded by `manage.py seed_demo`: teams, a user for each role, a break-glass admin."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.audit.services import audit_record

from .models import Membership, OrgRole, Team, TeamRole, User
from .services import membership_add, team_create

DEMO_TEAMS = [
    ("payments", "Payments", "Agents that reconcile invoices and answer merchant questions.", Decimal("500.00")),
    ("support", "Customer support", "Agents that triage and answer support tickets.", Decimal("300.00")),
    ("research", "Research", "Experimental agents for market and competitor research.", Decimal("0")),
]
# username, display name, org role, [(team slug, role)]
DEMO_USERS = [
    ("olivia", "Olivia Owner", "", [("payments", TeamRole.OWNER), ("research", TeamRole.VIEWER)]),
    ("ben", "Ben Builder", "", [("payments", TeamRole.BUILDER)]),
    ("oscar", "Oscar Operator", "", [("payments", TeamRole.OPERATOR), ("support", TeamRole.OPERATOR)]),
    ("vera", "Vera Viewer", "", [("payments", TeamRole.VIEWER)]),
    ("sofia", "Sofia Support", "", [("support", TeamRole.OWNER)]),
    ("rita", "Rita Researcher", "", [("research", TeamRole.OWNER)]),
    ("sam", "Sam Security", OrgRole.SECURITY_AUDITOR, []),
]
ADMIN_USERNAME = "admin"


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.txt"


def _demo_password() -> str:
    """Return the demo password, made once and kept under var/ so reruns print the same one."""
    path = _credentials_file()
    if path.exists():
        return path.read_text().strip()
    password = "demo-" + secrets.token_urlsafe(9)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


@transaction.atomic
def seed_demo() -> dict:
    """Create what is missing of the demo organisation; return the login details."""
    password = _demo_password()
    admin = User.objects.filter(username=ADMIN_USERNAME).first()
    if admin is None:
        admin = User(
            username=ADMIN_USERNAME,
            display_name="Break-glass admin",
            org_role=OrgRole.PLATFORM_ADMIN,
            is_break_glass=True,
            is_staff=True,
            is_superuser=True,
        )
        admin.set_password(password)
        admin.save()
        audit_record(
            actor="system:seed_demo",
            action="user.create",
            obj=admin,
            after={"username": admin.username, "break_glass": True},
        )
    teams = {}
    for slug, name, description, budget in DEMO_TEAMS:
        teams[slug] = Team.objects.filter(slug=slug).first() or team_create(
            actor=admin, slug=slug, name=name, description=description, monthly_budget=budget
        )
    for username, display, org_role, memberships in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, display_name=display, org_role=org_role, email=f"{username}@example.com")
            user.set_password(password)
            user.save()
            audit_record(
                actor=admin, action="user.create", obj=user, after={"username": username, "org_role": org_role}
            )
        for slug, role in memberships:
            if not Membership.objects.filter(user=user, team=teams[slug]).exists():
                membership_add(actor=admin, team=teams[slug], user=user, role=role)
    rows = [(ADMIN_USERNAME, "platform admin (break-glass)")]
    for username, _display, org_role, memberships in DEMO_USERS:
        roles = ", ".join(f"{role} of {slug}" for slug, role in memberships) or OrgRole(org_role).label.lower()
        rows.append((username, roles))
    return {"password": password, "users": rows, "file": str(_credentials_file())}
