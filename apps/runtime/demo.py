"""The demo's runs: real runs of the engine against the built-in simulated model.

`seed_demo_runs` queues a few runs of the demo fleet's production versions, started by each
team's operator: the merchant FAQ searches the payments knowledge base and answers, the refund
assistant asks a person to approve its refund (it waits in the approvals inbox), the dispute
specialist answers. A worker executes them (`make run` starts one). Nothing is queued again
once the demo teams have runs.
"""

from __future__ import annotations

from apps.accounts.models import Membership, TeamRole
from apps.agents.models import Agent, Channel, ChannelName

from .models import Run, Trigger
from .services import run_start

DEMO_RUNS = [
    ("payments", "merchant-faq", {"question": "What are your card fees?"}),
    ("payments", "merchant-faq", {"question": "When are payouts made?"}),
    ("payments", "merchant-faq", {"question": "How long can I refund a charge?"}),
    ("payments", "refund-assistant", {"charge_id": "ch_3PdemoRefund42", "message": "Customer asked for a refund."}),
    ("payments", "dispute-specialist", {"charge_id": "ch_3PdemoDispute7", "message": "Cardholder says: not received."}),
]


def seed_demo_runs() -> list[int]:
    """Queue the demo's runs (once); return their ids."""
    teams = {slug for slug, _, _ in DEMO_RUNS}
    if Run.objects.filter(team__slug__in=teams).exists():
        return []
    started = []
    for slug, name, value in DEMO_RUNS:
        agent = Agent.objects.filter(team__slug=slug, name=name).select_related("team").first()
        if agent is None or not Channel.objects.filter(agent=agent, name=ChannelName.PRODUCTION).exists():
            continue
        operator = (
            Membership.objects.filter(team=agent.team, role__in=[TeamRole.OPERATOR, TeamRole.OWNER])
            .select_related("user")
            .order_by("-role")
            .first()
        )
        if operator is None:
            continue
        run = run_start(actor=operator.user, agent=agent, input=value, trigger=Trigger.UI)
        started.append(run.pk)
    return started


def demo_run_count() -> int:
    """Return how many runs the demo teams have."""
    return Run.objects.filter(team__slug__in={slug for slug, _, _ in DEMO_RUNS}).count()
