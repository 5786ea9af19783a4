"""Reads of runs, steps, approvals and triggers: only what the user may see (another team's is a 404).

A user sees the runs of the agents they may see (apps.agents.selectors.agent_list): their teams'
agents, agents granted to them one by one, or every team for platform admins and auditors.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from apps.agents.selectors import agent_list

from .models import Approval, ApprovalStatus, Run, Schedule, Step, Webhook

RUN_FILTERS = ("agent", "status", "trigger", "team", "since", "session", "q")


def _visible_agents(user):
    return agent_list(user=user).values("pk")


def run_list(*, user, team=None, filters: dict | None = None) -> QuerySet[Run]:
    """Return the runs the user may see, newest first, filtered by agent name, status, trigger, team, since."""
    qs = Run.objects.filter(agent__in=_visible_agents(user)).select_related(
        "agent", "team", "model__provider", "agent_version"
    )
    if team is not None:
        qs = qs.filter(team=team)
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "", [])}
    if "agent" in f:
        qs = qs.filter(agent__name=f["agent"])
    if "status" in f:
        qs = qs.filter(status=f["status"])
    if "trigger" in f:
        qs = qs.filter(trigger=f["trigger"])
    if "team" in f:
        qs = qs.filter(team__slug=f["team"])
    if "session" in f:
        qs = qs.filter(session__key=f["session"])
    if "since" in f:
        hours = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}.get(f["since"])
        if hours:
            qs = qs.filter(created_at__gte=timezone.now() - timedelta(hours=hours))
    if "q" in f:
        qs = qs.filter(error__icontains=f["q"])
    return qs.order_by("-created_at", "-pk")


def run_get(*, user, pk) -> Run:
    """Return one run the user may see, or raise Http404."""
    try:
        return run_list(user=user).select_related("parent", "started_by", "session").get(pk=pk)
    except (Run.DoesNotExist, ValueError, TypeError):
        raise Http404("No such run.") from None


def step_list(*, run: Run, after: int | None = None) -> QuerySet[Step]:
    """Return the run's steps in order (after an index, for live updates)."""
    qs = Step.objects.filter(run=run).select_related("tool_version", "child_run").order_by("index")
    if after is not None:
        qs = qs.filter(index__gt=after)
    return qs


def approval_list(*, user, team=None, status: str | None = ApprovalStatus.PENDING) -> QuerySet[Approval]:
    """Return the approvals the user may see (pending ones by default), oldest pending first."""
    qs = Approval.objects.filter(run__agent__in=_visible_agents(user)).select_related(
        "run__agent", "team", "decided_by", "step"
    )
    if team is not None:
        qs = qs.filter(team=team)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("created_at", "pk") if status == ApprovalStatus.PENDING else qs.order_by("-created_at", "-pk")


def approval_get(*, user, pk) -> Approval:
    """Return one approval the user may see, or raise Http404."""
    try:
        return approval_list(user=user, status=None).get(pk=pk)
    except (Approval.DoesNotExist, ValueError, TypeError):
        raise Http404("No such approval.") from None


def webhook_list(*, agent) -> QuerySet[Webhook]:
    """Return the agent's webhooks (the caller already holds the agent through agent_get)."""
    return Webhook.objects.filter(agent=agent).select_related("created_by")


def webhook_get(*, user, pk) -> Webhook:
    """Return one webhook of an agent the user may see, or raise Http404."""
    try:
        return Webhook.objects.select_related("agent", "team").get(pk=pk, agent__in=_visible_agents(user))
    except (Webhook.DoesNotExist, ValueError, TypeError):
        raise Http404("No such webhook.") from None


def schedule_list(*, agent) -> QuerySet[Schedule]:
    """Return the agent's schedules."""
    return Schedule.objects.filter(agent=agent).select_related("created_by")


def schedule_get(*, user, pk) -> Schedule:
    """Return one schedule of an agent the user may see, or raise Http404."""
    try:
        return Schedule.objects.select_related("agent", "team").get(pk=pk, agent__in=_visible_agents(user))
    except (Schedule.DoesNotExist, ValueError, TypeError):
        raise Http404("No such schedule.") from None
