"""Template helpers of the runtime, also used by the agents' pages (dependencies point runtime -> agents).

`{% agent_runtime_panel agent %}` draws the agent page's runtime section: run it, its recent runs,
its webhooks and schedules, its daily budget. `{% playground_example agent %}` prefills the Studio
playground. Filters: `pretty_json` (indented JSON; the template escapes it), `duration` (ms).
"""

from __future__ import annotations

import json

from django import template

register = template.Library()
RECENT_RUNS = 10


def input_example(schema) -> object:
    """Return an example input for a JSON Schema: its first example, its default, else {}."""
    if not isinstance(schema, dict):
        return {}
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    return {}


@register.filter
def pretty_json(value) -> str:
    """Return the value as indented JSON text (escaped by the template like any other text)."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def duration(ms) -> str:
    """Return milliseconds as a short human duration: 850 ms, 2.4 s, 3 min 5 s."""
    if ms is None or ms == "":
        return "—"
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


@register.simple_tag
def playground_example(agent) -> str:
    """Return the JSON the Studio playground's input starts with (from the draft's input schema)."""
    return json.dumps(input_example((agent.draft_spec or {}).get("input_schema")), indent=2)


@register.inclusion_tag("runtime/_agent_panel.html", takes_context=True)
def agent_runtime_panel(context, agent) -> dict:
    """Draw the agent page's runtime section for the signed-in user."""
    from apps.accounts.permissions import has_perm

    from .. import limits, selectors
    from ..forms import BudgetForm

    request = context["request"]
    user = request.user
    return {
        "agent": agent,
        "csrf_token": context.get("csrf_token"),
        "runs": selectors.run_list(user=user).filter(agent=agent).defer("spec", "input", "output")[:RECENT_RUNS],
        "webhook_count": selectors.webhook_list(agent=agent).count(),
        "schedule_count": selectors.schedule_list(agent=agent).count(),
        "spent_today": limits.spent(team_id=agent.team_id, agent_id=agent.pk),
        "budget_form": BudgetForm(initial={"daily_budget_usd": agent.daily_budget_usd}),
        "can_run": has_perm(user, "run.start", agent.team, agent) and agent.status == "active",
        "can_set_budget": has_perm(user, "team.change", agent.team),
    }
