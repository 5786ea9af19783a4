"""Runtime pages: runs and their live timeline, the run form, the playground, approvals, webhooks, schedules.

Each view validates input, calls one service or selector, and renders. Objects are read through
the runtime and agents selectors (another team's is a 404); the services check permissions and
the AccessDenied middleware answers 403. The public webhook endpoint is the one view without a
sign-in: the HMAC signature is its authentication.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import has_perm
from apps.agents import services as agent_services
from apps.agents.selectors import agent_get, channel_map
from apps.core.exceptions import ServiceError
from apps.core.registry_views import page_of
from apps.core.validation import add_service_error
from apps.core.views import login_required_view

from . import selectors, services
from .api.serializers import StepSerializer
from .forms import (
    ApprovalDecideForm,
    BudgetForm,
    CancelForm,
    EnabledForm,
    PlaygroundForm,
    RunFilterForm,
    RunStartForm,
    ScheduleCreateForm,
    WebhookCreateForm,
)
from .models import ApprovalKind, ApprovalStatus, Run, Step, Trigger, UncertainChoice
from .templatetags.runtime_tags import input_example

LIST_DEFERRED = ("spec", "input", "output")
# The approvals list summarises each run's steps by name and status; their inputs and outputs stay unread.
RECENT_STEPS = Prefetch("run__steps", queryset=Step.objects.only("id", "run", "index", "kind", "name", "status"))


def _form_errors(form) -> str:
    return "; ".join(f"{'' if k == '__all__' else k + ': '}{' '.join(v)}" for k, v in form.errors.items())


# --- Runs -------------------------------------------------------------------------------------


@require_GET
@login_required_view
def run_list_view(request):
    form = RunFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    # The pinned spec and the input and output can be large, and the list shows none of them.
    runs = selectors.run_list(user=request.user, filters=filters).defer(*LIST_DEFERRED)
    page, query = page_of(request, runs)
    return render(request, "runtime/run_list.html", {"form": form, "page": page, "query": query})


def _approvals_by_step(request, run: Run) -> dict[int, int]:
    rows = selectors.approval_list(user=request.user, status=None).filter(run=run).values_list("step_id", "pk")
    return dict(rows)


def step_payloads(request, run: Run, steps) -> list[dict]:
    """Return steps as the live timeline draws them: the API's fields plus links to pages."""
    approvals = _approvals_by_step(request, run)
    payloads = []
    for step in steps:
        data = dict(StepSerializer(step).data)
        approval = approvals.get(step.pk)
        data["approval_url"] = reverse("runtime:approval_detail", args=[approval]) if approval else None
        data["child_run_url"] = reverse("runtime:run_detail", args=[step.child_run_id]) if step.child_run_id else None
        payloads.append(data)
    return payloads


def run_payload(run: Run) -> dict:
    """Return what the live page updates about the run itself: status, result and totals."""
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": run.finished,
        "simulated": run.simulated,
        "output": run.output,
        "error": run.error,
        "error_code": run.error_code,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "cost_usd": f"{run.cost_usd:.6f}",
        "step_count": run.step_count,
        "duration_ms": run.duration_ms,
        "detail_url": reverse("runtime:run_detail", args=[run.pk]),
        "steps_url": reverse("runtime:run_steps_json", args=[run.pk]),
    }


@require_GET
@login_required_view
def run_detail_view(request, pk: int):
    run = selectors.run_get(user=request.user, pk=pk)
    steps = list(selectors.step_list(run=run))
    approvals = _approvals_by_step(request, run)
    context = {
        "run": run,
        "steps": [(step, approvals.get(step.pk)) for step in steps],
        "children": selectors.run_list(user=request.user).filter(parent=run),
        "can_cancel": not run.finished and has_perm(request.user, "run.start", run.team, run.agent),
        "cancel_form": CancelForm(),
    }
    return render(request, "runtime/run_detail.html", context)


@require_GET
@login_required_view
def run_steps_json_view(request, pk: int):
    """Answer the run's status and totals and its steps after ?after=<index> (all without it), for live pages."""
    run = selectors.run_get(user=request.user, pk=pk)
    try:
        after = int(request.GET["after"])
    except (KeyError, ValueError):
        after = None
    steps = selectors.step_list(run=run, after=after)
    body = {"run": run_payload(run), "steps": step_payloads(request, run, steps)}
    return JsonResponse(body, encoder=DjangoJSONEncoder)


@require_POST
@login_required_view
def run_cancel_view(request, pk: int):
    run = selectors.run_get(user=request.user, pk=pk)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.run_cancel(actor=request.user, run=run, reason=reason)
        messages.success(request, f"Run {run.pk} was asked to stop.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("runtime:run_detail", pk=run.pk)


def _channel_example(agent) -> dict:
    version = channel_map(agent).get("production")
    spec = version.spec if version is not None else agent.draft_spec
    return input_example((spec or {}).get("input_schema"))


@login_required_view
def run_start_view(request, pk: int):
    """Start a run of the agent's version in a channel from a form; then watch it on the run page."""
    agent = agent_get(user=request.user, pk=pk)
    form = RunStartForm(request.POST or None, initial={"input": _channel_example(agent)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                run = services.run_start(
                    actor=request.user,
                    agent=agent,
                    input=form.cleaned_data["input"],
                    channel=form.cleaned_data["channel"],
                    trigger=Trigger.UI,
                    session_key=form.cleaned_data["session"] or None,
                )
                messages.success(request, f"Run {run.pk} started.")
                return redirect("runtime:run_detail", pk=run.pk)
            except ServiceError as exc:
                add_service_error(form, exc)
        status = 400
    context = {
        "agent": agent,
        "form": form,
        "channels": channel_map(agent),
        "can_run": has_perm(request.user, "run.start", agent.team, agent),
    }
    return render(request, "runtime/run_start.html", context, status=status)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
@login_required_view
def playground_run_view(request, pk: int):
    """Run the agent's draft; the Studio's script asks for JSON and draws the timeline in place."""
    agent = agent_get(user=request.user, pk=pk)
    form = PlaygroundForm(request.POST)
    studio = reverse("agents:agent_studio", args=[agent.pk]) + "#playground"
    if not form.is_valid():
        if _wants_json(request):
            return JsonResponse({"error": _form_errors(form), "field": "input"}, status=400)
        messages.error(request, f"Not run: {_form_errors(form)}")
        return redirect(studio)
    try:
        run = services.run_start_draft(
            actor=request.user,
            agent=agent,
            input=form.cleaned_data["input"],
            session_key=form.cleaned_data["session"] or None,
        )
    except ServiceError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.message, "field": exc.field}, status=400)
        messages.error(request, f"Not run: {exc.message}")
        return redirect(studio)
    if _wants_json(request):
        return JsonResponse(run_payload(run), status=201, encoder=DjangoJSONEncoder)
    return redirect("runtime:run_detail", pk=run.pk)


# --- Approvals --------------------------------------------------------------------------------


@require_GET
@login_required_view
def approval_list_view(request):
    tab = "decided" if request.GET.get("status") == "decided" else "pending"
    if tab == "pending":
        rows = selectors.approval_list(user=request.user)
    else:
        rows = selectors.approval_list(user=request.user, status=None).exclude(status=ApprovalStatus.PENDING)
    page, query = page_of(request, rows.prefetch_related(RECENT_STEPS))
    items = [(a, has_perm(request.user, "run.approve", a.team, a.run.agent)) for a in page]
    context = {"page": page, "query": query, "tab": tab, "items": items, "choices": UncertainChoice.choices}
    return render(request, "runtime/approval_list.html", context)


@require_GET
@login_required_view
def approval_detail_view(request, pk: int):
    approval = selectors.approval_get(user=request.user, pk=pk)
    run = approval.run
    approvals = _approvals_by_step(request, run)
    context = {
        "approval": approval,
        "run": run,
        "steps": [(step, approvals.get(step.pk)) for step in selectors.step_list(run=run)],
        "can_decide": approval.status == ApprovalStatus.PENDING
        and has_perm(request.user, "run.approve", approval.team, run.agent),
        "choices": UncertainChoice.choices,
    }
    return render(request, "runtime/approval_detail.html", context)


@require_POST
@login_required_view
def approval_decide_view(request, pk: int):
    approval = selectors.approval_get(user=request.user, pk=pk)
    form = ApprovalDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not decided: {_form_errors(form)}")
        return redirect("runtime:approval_detail", pk=approval.pk)
    data = form.cleaned_data
    try:
        decided = services.approval_decide(
            actor=request.user,
            approval=approval,
            approve=data["approve"],
            comment=data["comment"],
            decision=(data["decision"] or None) if approval.kind == ApprovalKind.UNCERTAIN else None,
        )
    except ServiceError as exc:
        messages.error(request, f"Not decided: {exc.message}")
        return redirect("runtime:approval_detail", pk=approval.pk)
    what = decided.get_status_display().lower()
    messages.success(request, f"{decided.tool_name} in run {decided.run_id}: {what}. The run goes on.")
    return redirect("runtime:approval_list")


# --- Webhooks, schedules and the budget of an agent ------------------------------------------


def _trigger_page(request, agent, *, status: int = 200, **extra):
    webhooks = [
        (w, request.build_absolute_uri(reverse("runtime:webhook_receive", args=[w.token])))
        for w in selectors.webhook_list(agent=agent)
    ]
    context = {
        "agent": agent,
        "webhooks": webhooks,
        "schedules": selectors.schedule_list(agent=agent),
        "can_manage": has_perm(request.user, "trigger.manage", agent.team, agent),
        "webhook_form": WebhookCreateForm(),
        "schedule_form": ScheduleCreateForm(initial={"input": _channel_example(agent)}),
        "signature_header": services.SIGNATURE_HEADER,
        "timestamp_header": services.TIMESTAMP_HEADER,
        **extra,
    }
    return render(request, "runtime/trigger_list.html", context, status=status)


@require_GET
@login_required_view
def trigger_list_view(request, pk: int):
    return _trigger_page(request, agent_get(user=request.user, pk=pk))


@require_POST
@login_required_view
def webhook_create_view(request, pk: int):
    """Create a webhook and show its signing secret on the answer page, the only time it is shown."""
    agent = agent_get(user=request.user, pk=pk)
    form = WebhookCreateForm(request.POST)
    if form.is_valid():
        try:
            webhook, secret = services.webhook_create(actor=request.user, agent=agent, **form.cleaned_data)
            url = request.build_absolute_uri(reverse("runtime:webhook_receive", args=[webhook.token]))
            return _trigger_page(request, agent, shown={"webhook": webhook, "secret": secret, "url": url})
        except ServiceError as exc:
            add_service_error(form, exc)
    return _trigger_page(request, agent, status=400, webhook_form=form)


@require_POST
@login_required_view
def webhook_rotate_view(request, pk: int):
    webhook = selectors.webhook_get(user=request.user, pk=pk)
    secret = services.webhook_rotate_secret(actor=request.user, webhook=webhook)
    url = request.build_absolute_uri(reverse("runtime:webhook_receive", args=[webhook.token]))
    return _trigger_page(request, webhook.agent, shown={"webhook": webhook, "secret": secret, "url": url})


def _trigger_action(request, obj, act, *, form_class=None):
    """Apply act(cleaned form data) -> message to a webhook or schedule; go back to its agent's trigger page."""
    data = {}
    if form_class is not None:
        form = form_class(request.POST)
        if not form.is_valid():
            messages.error(request, f"Not changed: {_form_errors(form)}")
            return redirect("runtime:trigger_list", pk=obj.agent_id)
        data = form.cleaned_data
    try:
        messages.success(request, act(data))
    except ServiceError as exc:
        messages.error(request, f"Not changed: {exc.message}")
    return redirect("runtime:trigger_list", pk=obj.agent_id)


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"


@require_POST
@login_required_view
def webhook_enabled_view(request, pk: int):
    webhook = selectors.webhook_get(user=request.user, pk=pk)

    def act(data):
        services.webhook_set_enabled(actor=request.user, webhook=webhook, enabled=data["enabled"])
        return f"Webhook {webhook.name} turned {_on_off(data['enabled'])}."

    return _trigger_action(request, webhook, act, form_class=EnabledForm)


@require_POST
@login_required_view
def webhook_delete_view(request, pk: int):
    webhook = selectors.webhook_get(user=request.user, pk=pk)

    def act(data):
        services.webhook_delete(actor=request.user, webhook=webhook)
        return f"Webhook {webhook.name} deleted: its URL no longer starts runs."

    return _trigger_action(request, webhook, act)


@require_POST
@login_required_view
def schedule_create_view(request, pk: int):
    agent = agent_get(user=request.user, pk=pk)
    form = ScheduleCreateForm(request.POST)
    if form.is_valid():
        try:
            schedule = services.schedule_create(actor=request.user, agent=agent, **form.cleaned_data)
            messages.success(request, f"Schedule {schedule.name} created: {schedule.cron} ({schedule.timezone_name}).")
            return redirect("runtime:trigger_list", pk=agent.pk)
        except ServiceError as exc:
            add_service_error(form, exc, lambda field: "timezone_name" if field == "timezone" else field)
    return _trigger_page(request, agent, status=400, schedule_form=form)


@require_POST
@login_required_view
def schedule_enabled_view(request, pk: int):
    schedule = selectors.schedule_get(user=request.user, pk=pk)

    def act(data):
        services.schedule_update(actor=request.user, schedule=schedule, enabled=data["enabled"])
        return f"Schedule {schedule.name} turned {_on_off(data['enabled'])}."

    return _trigger_action(request, schedule, act, form_class=EnabledForm)


@require_POST
@login_required_view
def schedule_delete_view(request, pk: int):
    schedule = selectors.schedule_get(user=request.user, pk=pk)

    def act(data):
        services.schedule_delete(actor=request.user, schedule=schedule)
        return f"Schedule {schedule.name} deleted."

    return _trigger_action(request, schedule, act)


@require_POST
@login_required_view
def agent_budget_view(request, pk: int):
    """Set the agent's daily budget (team owners); runs stop before spending beyond it."""
    agent = agent_get(user=request.user, pk=pk)
    form = BudgetForm(request.POST)
    if form.is_valid():
        try:
            agent_services.agent_set_budget(
                actor=request.user, agent=agent, daily_budget_usd=form.cleaned_data["daily_budget_usd"]
            )
            messages.success(request, f"Daily budget of {agent.name}: {agent.daily_budget_usd} USD (0: none).")
        except ServiceError as exc:
            messages.error(request, f"Not saved: {exc.message}")
    else:
        messages.error(request, f"Not saved: {_form_errors(form)}")
    return redirect(reverse("agents:agent_detail", args=[agent.pk]) + "#runtime")


# --- The public webhook endpoint --------------------------------------------------------------


@csrf_exempt
def webhook_receive_view(request, token):
    """Start a run from a signed POST: 202 with the run, or the refusal's status with what is wrong."""
    if request.method != "POST":
        response = JsonResponse(
            {"error": "Send the event as a signed POST request.", "code": "method_not_allowed"}, status=405
        )
        response["Allow"] = "POST"
        return response
    try:
        run = services.webhook_receive(token=token, body=request.body, headers=request.headers)
    except services.WebhookRefused as exc:
        return JsonResponse({"error": exc.message, "code": exc.code}, status=exc.status)
    except ServiceError as exc:
        body = {"error": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
        return JsonResponse(body, status=400)
    url = request.build_absolute_uri(reverse("api:run-detail", args=[run.pk]))
    return JsonResponse({"run": run.pk, "status": run.status, "url": url}, status=202)
