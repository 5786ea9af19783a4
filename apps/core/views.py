"""The shell: home page, placeholder pages for areas still to come, health endpoints."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import readiness


def login_required_view(view):
    """Require a signed-in user and never cache the page (it shows tenant data)."""
    return never_cache(login_required(view))


# Areas of DESIGN.md not built yet: what will live there, shown instead of an empty page.
AREAS = {
    "studio": (
        "Studio",
        "Design an agent without code: model, prompt, tools, limits, memory and handoffs, with a playground run of the draft.",
    ),
    "agents": (
        "Agents",
        "The agent registry: immutable versions, staging and production channels, promotion history and rollback.",
    ),
    "tools": (
        "Tools",
        "The tool registry: HTTP, sandboxed Python, MCP and agent-handoff tools with JSON-Schema parameters and the permissions each brings.",
    ),
    "prompts": ("Prompts", "Versioned prompt templates with declared variables, labels and rollout percentages."),
    "models": ("Models", "The model catalog: providers, approved/deprecated/blocked models and their prices."),
    "runs": ("Runs", "Every run of every agent: status, steps, tokens, cost and a live timeline."),
    "approvals": ("Approvals", "Tool calls waiting for a person: approve or reject with a reason."),
    "context": ("Context spaces", "Shared facts, documents, decisions and versioned state that agents read and write."),
    "inventory": ("Fleet inventory", "Every agent, what it can reach (tools, secrets, models, data) and who owns it."),
    "observability": (
        "Observability",
        "Traces of every model and tool call, cost and token analytics, Plotly dashboards and alerts.",
    ),
    "evals": (
        "Evaluations",
        "Datasets, scorers and promotion gates: is the new version at least as good as production?",
    ),
    "workflows": ("Workflows", "Multi-agent workflows with human review, branches and retries."),
    "gateway": (
        "LLM gateway",
        "An OpenAI-compatible endpoint for agents built elsewhere, with virtual keys, budgets and tracing.",
    ),
    "policies": ("Policies and guardrails", "Rules as data, PII redaction and prompt-injection screening."),
    "secrets": ("Secrets", "Encrypted secrets granted to providers, tools and agents; never shown again."),
}


@login_required_view
def home_view(request):
    return render(request, "core/home.html")


@login_required_view
def area_placeholder_view(request, area: str):
    if area not in AREAS:
        raise Http404("No such area.")
    title, description = AREAS[area]
    return render(request, "core/area_placeholder.html", {"area_title": title, "area_description": description})


@require_GET
def healthz_view(request):
    """Answer that the process is up (for a liveness probe: no dependency is checked)."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz_view(request):
    """Answer whether the database, the broker and a recently seen worker are all ready."""
    report = readiness()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
