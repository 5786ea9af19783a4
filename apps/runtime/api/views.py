"""The runtime API: start, watch and cancel runs, decide approvals, manage an agent's webhooks and schedules.

Reads go through the runtime selectors (another team's run is a 404); writes call one service,
which checks the permission. Starting, cancelling and deciding need a token with the `run`
scope; webhooks, schedules and the playground change the registry's side, so they need `write`.
"""

from __future__ import annotations

import time

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.models import TokenScope
from apps.agents.selectors import agent_get
from apps.core.registry_api import filters_from

from .. import selectors, services
from ..forms import RunFilterForm
from ..models import FINISHED, Approval, Run, RunStatus, Schedule, Webhook
from .serializers import (
    APPROVAL_STATUS_FILTER,
    ApprovalDecideSerializer,
    ApprovalSerializer,
    CancelSerializer,
    PlaygroundSerializer,
    RunDetailSerializer,
    RunSerializer,
    RunStartSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleUpdateSerializer,
    StepSerializer,
    WebhookCreateSerializer,
    WebhookEnabledSerializer,
    WebhookSerializer,
)

POLL_SECONDS = 0.05
RUN_FILTERS = ["agent", "status", "trigger", "since", "session", "team"]


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("Not found.") from None


def run_wait(run: Run, seconds: float) -> Run:
    """Return the run once it finished or waits for a person, or after `seconds`, re-read from the database."""
    deadline = time.monotonic() + seconds
    while run.status not in FINISHED and run.status != RunStatus.WAITING and time.monotonic() < deadline:
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        run.refresh_from_db()
    return run


def run_detail_data(request, run: Run) -> dict:
    """Return the run as the API shows it, with its steps and child runs."""
    context = {
        "request": request,
        "steps": selectors.step_list(run=run),
        "children": selectors.run_list(user=request.user).filter(parent=run).values_list("pk", flat=True),
    }
    return RunDetailSerializer(run, context=context).data


@extend_schema(parameters=[OpenApiParameter(f, str, description=f"Filter by {f}") for f in RUN_FILTERS])
class RunViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Runs of the agents the caller may see: list, read with steps, start, cancel."""

    serializer_class = RunSerializer
    queryset = Run.objects.none()  # for the schema; requests read through the selector
    write_scope = TokenScope.RUN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Run.objects.none()
        runs = selectors.run_list(user=self.request.user, filters=filters_from(self.request, RunFilterForm))
        return runs.select_related("model__provider")  # each run shows its model as provider/name

    def get_object(self) -> Run:
        return selectors.run_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    @extend_schema(responses=RunDetailSerializer)
    def retrieve(self, request, pk=None):
        return Response(run_detail_data(request, self.get_object()))

    @extend_schema(
        request=RunStartSerializer,
        responses={201: RunSerializer, 200: RunSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                description="Repeating a request with the same key returns the same run (200) instead of a new one.",
            )
        ],
    )
    def create(self, request):
        """Start a run of the agent's version in the channel (201); with `wait`, answer when it ends or pauses."""
        data = _valid(RunStartSerializer, request.data)
        agent = agent_get(user=request.user, pk=data["agent"])
        asked_at = timezone.now()
        run = services.run_start(
            actor=request.user,
            agent=agent,
            input=data["input"],
            channel=data["channel"],
            session_key=data.get("session") or None,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        # A run created before this request began is the answer to an earlier request with the same key.
        fresh = run.created_at >= asked_at
        if data["wait"]:
            run = run_wait(run, data["wait"])
        return Response(
            RunSerializer(run, context={"request": request}).data,
            status=status.HTTP_201_CREATED if fresh else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Only steps after this index (for live updates)")],
        responses=StepSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def steps(self, request, pk=None):
        """List the run's steps in order; `after` returns only the newer ones."""
        after = request.query_params.get("after")
        try:
            after = int(after) if after not in (None, "") else None
        except ValueError:
            raise ValidationError({"after": ["Give a step index, e.g. after=3."]}) from None
        page = self.paginate_queryset(selectors.step_list(run=self.get_object(), after=after))
        return self.get_paginated_response(StepSerializer(page, many=True).data)

    @extend_schema(request=CancelSerializer, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Ask the run to stop: a queued or waiting run stops now, a running one between two steps."""
        reason = _valid(CancelSerializer, request.data).get("reason", "")
        run = services.run_cancel(actor=request.user, run=self.get_object(), reason=reason)
        return Response(RunSerializer(run, context={"request": request}).data)


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, enum=APPROVAL_STATUS_FILTER, description="Default: pending"),
    ]
)
class ApprovalViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Tool calls waiting for a person (and decided ones): read and decide."""

    serializer_class = ApprovalSerializer
    queryset = Approval.objects.none()
    write_scope = TokenScope.RUN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Approval.objects.none()
        wanted = self.request.query_params.get("status") or "pending"
        if wanted not in APPROVAL_STATUS_FILTER:
            raise ValidationError({"status": [f"Status must be one of {', '.join(APPROVAL_STATUS_FILTER)}."]})
        return selectors.approval_list(user=self.request.user, status=None if wanted == "all" else wanted)

    def get_object(self) -> Approval:
        return selectors.approval_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    def retrieve(self, request, pk=None):
        return Response(ApprovalSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(request=ApprovalDecideSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Approve or reject the call (a rejection needs a comment); uncertain calls take a decision too."""
        data = _valid(ApprovalDecideSerializer, request.data)
        approval = services.approval_decide(
            actor=request.user,
            approval=self.get_object(),
            approve=data["approve"],
            comment=data.get("comment", ""),
            decision=data.get("decision"),
        )
        approval = selectors.approval_get(user=request.user, pk=approval.pk)
        return Response(ApprovalSerializer(approval, context={"request": request}).data)


class WebhookViewSet(mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """One webhook: read, rotate its secret, turn it on or off, delete it."""

    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()

    def get_object(self) -> Webhook:
        return selectors.webhook_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    def retrieve(self, request, pk=None):
        return Response(WebhookSerializer(self.get_object(), context={"request": request}).data)

    def perform_destroy(self, instance):
        services.webhook_delete(actor=self.request.user, webhook=instance)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        """Give the webhook a new signing secret, shown in this answer only; the old one stops working."""
        webhook = self.get_object()
        secret = services.webhook_rotate_secret(actor=request.user, webhook=webhook)
        return Response({**WebhookSerializer(webhook, context={"request": request}).data, "secret": secret})

    @extend_schema(request=WebhookEnabledSerializer, responses=WebhookSerializer)
    @action(detail=True, methods=["post", "patch"])
    def enabled(self, request, pk=None):
        """Turn the webhook on or off."""
        enabled = _valid(WebhookEnabledSerializer, request.data)["enabled"]
        webhook = services.webhook_set_enabled(actor=request.user, webhook=self.get_object(), enabled=enabled)
        return Response(WebhookSerializer(webhook, context={"request": request}).data)


class ScheduleViewSet(mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """One schedule: read, change (cron, timezone, input, channel, enabled), delete."""

    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.none()

    def get_object(self) -> Schedule:
        return selectors.schedule_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    def retrieve(self, request, pk=None):
        return Response(ScheduleSerializer(self.get_object()).data)

    @extend_schema(request=ScheduleUpdateSerializer, responses=ScheduleSerializer)
    def partial_update(self, request, pk=None):
        changes = dict(_valid(ScheduleUpdateSerializer, request.data))
        if "timezone" in changes:
            changes["timezone_name"] = changes.pop("timezone")
        schedule = services.schedule_update(actor=request.user, schedule=self.get_object(), **changes)
        return Response(ScheduleSerializer(schedule).data)

    def perform_destroy(self, instance):
        services.schedule_delete(actor=self.request.user, schedule=instance)


class AgentWebhookListView(generics.GenericAPIView):
    """An agent's webhooks: list them, or create one (its signing secret is in this answer only)."""

    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()

    @extend_schema(responses=WebhookSerializer(many=True))
    def get(self, request, agent_pk: int):
        agent = agent_get(user=request.user, pk=agent_pk)
        page = self.paginate_queryset(selectors.webhook_list(agent=agent))
        return self.get_paginated_response(WebhookSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=WebhookCreateSerializer, responses={201: dict})
    def post(self, request, agent_pk: int):
        agent = agent_get(user=request.user, pk=agent_pk)
        data = _valid(WebhookCreateSerializer, request.data)
        webhook, secret = services.webhook_create(
            actor=request.user, agent=agent, name=data["name"], channel=data["channel"]
        )
        body = {**WebhookSerializer(webhook, context={"request": request}).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class AgentScheduleListView(generics.GenericAPIView):
    """An agent's schedules: list them, or create one."""

    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.none()

    @extend_schema(responses=ScheduleSerializer(many=True))
    def get(self, request, agent_pk: int):
        agent = agent_get(user=request.user, pk=agent_pk)
        page = self.paginate_queryset(selectors.schedule_list(agent=agent))
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)

    @extend_schema(request=ScheduleCreateSerializer, responses={201: ScheduleSerializer})
    def post(self, request, agent_pk: int):
        agent = agent_get(user=request.user, pk=agent_pk)
        data = _valid(ScheduleCreateSerializer, request.data)
        schedule = services.schedule_create(
            actor=request.user,
            agent=agent,
            name=data["name"],
            cron=data["cron"],
            input=data["input"],
            timezone_name=data["timezone"],
            channel=data["channel"],
        )
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class AgentPlaygroundView(generics.GenericAPIView):
    """Run the agent's current draft (the Studio playground); builders and owners may."""

    serializer_class = PlaygroundSerializer
    queryset = Run.objects.none()

    @extend_schema(request=PlaygroundSerializer, responses={201: RunSerializer})
    def post(self, request, agent_pk: int):
        agent = agent_get(user=request.user, pk=agent_pk)
        data = _valid(PlaygroundSerializer, request.data)
        run = services.run_start_draft(
            actor=request.user, agent=agent, input=data["input"], session_key=data.get("session") or None
        )
        return Response(RunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)
