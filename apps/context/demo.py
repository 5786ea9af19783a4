"""The demo's shared context: the knowledge spaces the demo fleet's agents read and write.

Created through the services as each team's builder, and granted to the agents whose specs ask
for them, so the demo's runs search real entries. What already exists is left as it is.
"""

from __future__ import annotations

from apps.accounts.models import Membership, Team, TeamRole
from apps.agents.models import Agent

from .models import ContextGrant, ContextSpace, EntryKind
from .services import context_decision_record, context_entry_add, context_grant_set, context_space_create

SPACES = {
    "payments": [
        (
            "payments-kb",
            "Fees, payout schedules and refund policy, as the payments team answers merchants.",
            [
                (
                    "fees",
                    "Card fees",
                    "Card payments cost 1.4% + 0.25 EUR for European cards and 2.9% + 0.25 EUR "
                    "for other cards. There is no monthly fee.",
                ),
                (
                    "payouts",
                    "Payout schedule",
                    "Payouts are made every business day, two days after the payment "
                    "(T+2). Merchants can switch to weekly payouts in their settings.",
                ),
                (
                    "refund-window",
                    "Refund window",
                    "Charges can be refunded up to 180 days after the payment. "
                    "Refunds above 500 EUR need a second person's approval.",
                ),
            ],
            [("Refunds above 500 EUR need two people", "Agreed with finance after the March incident.")],
        )
    ],
    "support": [
        (
            "support-kb",
            "Known issues, workarounds and the triage decisions of the support team.",
            [
                (
                    "login-loop",
                    "Login loop on Safari",
                    "Safari 17 users stuck on the sign-in page: clear the site's cookies; fixed in release 4.2.",
                ),
                (
                    "sla",
                    "Response times",
                    "Urgent tickets are answered within 1 hour, high within 4 hours, normal within one business day.",
                ),
            ],
            [("Escalate every ticket mentioning a chargeback", "Chargebacks have a legal deadline.")],
        )
    ],
    "research": [
        ("research-notes", "Notes and findings of the research agents.", [], []),
    ],
}


def _person(team: Team, *roles: str):
    membership = (
        Membership.objects.filter(team=team, role__in=roles).select_related("user").order_by("role", "pk").first()
    )
    return membership.user if membership else None


def seed_demo_context() -> list[str]:
    """Create the demo teams' context spaces with their entries and grants; return the spaces created."""
    created = []
    for team in Team.objects.filter(slug__in=SPACES):
        builder = _person(team, TeamRole.BUILDER, TeamRole.OWNER)
        if builder is None:
            continue
        for name, description, facts, decisions in SPACES[team.slug]:
            space = ContextSpace.objects.filter(team=team, name=name).first()
            if space is None:
                space = context_space_create(actor=builder, team=team, name=name, description=description)
                for key, title, body in facts:
                    context_entry_add(actor=builder, space=space, kind=EntryKind.FACT, key=key, title=title, body=body)
                for title, rationale in decisions:
                    context_decision_record(actor=builder, space=space, title=title, rationale=rationale)
                created.append(f"{team.slug}/{name}")
            for agent in Agent.objects.filter(team=team):
                for wanted in (agent.draft_spec.get("memory") or {}).get("context_spaces") or []:
                    if (
                        wanted.get("space") == name
                        and not ContextGrant.objects.filter(space=space, agent=agent).exists()
                    ):
                        context_grant_set(actor=builder, space=space, agent=agent, access=wanted.get("access", "read"))
    return created


def demo_context_count() -> int:
    """Return how many context spaces the demo teams have."""
    return ContextSpace.objects.filter(team__slug__in=SPACES).count()
