"""The alerts API: alert rules (list, create, read, change, delete) and events (list, read, acknowledge).

Reads go through the alert selectors (another team's rule or event is a 404); writes call one
service, which checks alert.manage or alert.acknowledge. A rule's webhook URL may hold a token,
so it is write-only: answers show its origin (`webhook`) only.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.accounts.selectors import team_get
from apps.agents.selectors import agent_get

from .. import selectors, services
from ..models import AlertEvent, AlertKind, AlertRule, DeliveryStatus

EVENT_STATES = {"open": False, "acknowledged": True, "all": None}


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("Not found.") from None


def _absolute(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class AlertRuleSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    kind = serializers.CharField(read_only=True, help_text="One of: " + ", ".join(AlertKind.values) + ".")
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    threshold = serializers.DecimalField(max_digits=14, decimal_places=4, read_only=True)
    agent_name = serializers.SerializerMethodField()
    webhook = serializers.SerializerMethodField(help_text="The webhook's origin; the full URL is write-only.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "url",
            "team",
            "name",
            "kind",
            "kind_label",
            "threshold",
            "agent",
            "agent_name",
            "window_minutes",
            "webhook",
            "enabled",
            "firing",
            "last_value",
            "last_evaluated_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_agent_name(self, rule) -> str | None:
        return rule.agent.name if rule.agent_id else None

    def get_webhook(self, rule) -> str:
        return services.webhook_origin(rule.webhook_url)

    def get_url(self, rule) -> str:
        return _absolute(self.context, reverse("api:alert-rule-detail", args=[rule.pk]))


class AlertRuleUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    kind = serializers.ChoiceField(choices=AlertKind.choices, required=False)
    threshold = serializers.DecimalField(max_digits=14, decimal_places=4, required=False)
    agent = serializers.IntegerField(
        required=False, allow_null=True, help_text="An agent of the team to narrow the rule to; null: every agent."
    )
    window_minutes = serializers.IntegerField(min_value=1, max_value=services.MAX_WINDOW_MINUTES, required=False)
    webhook_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Events are POSTed here as JSON (http/https)."
    )
    enabled = serializers.BooleanField(required=False)


class AlertRuleCreateSerializer(AlertRuleUpdateSerializer):
    team = serializers.SlugField(help_text="The team's slug.")
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    threshold = serializers.DecimalField(max_digits=14, decimal_places=4)


class AlertEventSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    kind = serializers.CharField(source="rule.kind", read_only=True)
    delivery_status = serializers.CharField(
        read_only=True, help_text="One of: " + ", ".join(DeliveryStatus.values) + "."
    )
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "url",
            "page_url",
            "team",
            "rule",
            "rule_name",
            "kind",
            "fired_at",
            "value",
            "threshold",
            "message",
            "run_id",
            "acknowledged_by",
            "acknowledged_at",
            "delivery_status",
            "delivery_attempts",
            "delivery_error",
        ]
        read_only_fields = fields

    def get_url(self, event) -> str:
        return _absolute(self.context, reverse("api:alert-event-detail", args=[event.pk]))

    def get_page_url(self, event) -> str:
        return _absolute(self.context, reverse("observability:alert_event_detail", args=[event.pk]))


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _rule_fields(request, data: dict) -> dict:
    """Return the service's keyword arguments: the agent id becomes an agent the caller may see (else 404)."""
    fields = dict(data)
    fields.pop("team", None)
    if "agent" in fields:
        fields["agent"] = agent_get(user=request.user, pk=fields["agent"]) if fields["agent"] is not None else None
    return fields


@extend_schema(parameters=[OpenApiParameter("team", str, description="Only this team's rules (slug)")])
class AlertRuleViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Alert rules of the teams the caller may see: list, create, read, change, delete."""

    serializer_class = AlertRuleSerializer
    queryset = AlertRule.objects.none()  # for the schema; requests read through the selector

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        slug = self.request.query_params.get("team")
        team = team_get(user=self.request.user, slug=slug) if slug else None
        return selectors.alert_rule_list(user=self.request.user, team=team)

    def get_object(self) -> AlertRule:
        return selectors.alert_rule_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    def retrieve(self, request, pk=None):
        return Response(AlertRuleSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(request=AlertRuleCreateSerializer, responses={201: AlertRuleSerializer})
    def create(self, request):
        data = _valid(AlertRuleCreateSerializer, request.data)
        team = team_get(user=request.user, slug=data["team"])
        rule = services.alert_rule_create(actor=request.user, team=team, **_rule_fields(request, data))
        return Response(AlertRuleSerializer(rule, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AlertRuleUpdateSerializer, responses=AlertRuleSerializer)
    def partial_update(self, request, pk=None):
        rule = self.get_object()
        data = _valid(AlertRuleUpdateSerializer, request.data)
        rule = services.alert_rule_update(actor=request.user, rule=rule, **_rule_fields(request, data))
        return Response(AlertRuleSerializer(rule, context={"request": request}).data)

    def destroy(self, request, pk=None):
        services.alert_rule_delete(actor=request.user, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    parameters=[
        OpenApiParameter("state", str, enum=list(EVENT_STATES), description="Default: all (unacknowledged first)"),
        OpenApiParameter("team", str, description="Only this team's events (slug)"),
    ]
)
class AlertEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Alert events of the teams the caller may see: list (unacknowledged first), read, acknowledge."""

    serializer_class = AlertEventSerializer
    queryset = AlertEvent.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertEvent.objects.none()
        state = self.request.query_params.get("state") or "all"
        if state not in EVENT_STATES:
            raise ValidationError({"state": [f"State must be one of {', '.join(EVENT_STATES)}."]})
        slug = self.request.query_params.get("team")
        team = team_get(user=self.request.user, slug=slug) if slug else None
        return selectors.alert_event_list(user=self.request.user, team=team, acknowledged=EVENT_STATES[state])

    def get_object(self) -> AlertEvent:
        return selectors.alert_event_get(user=self.request.user, pk=_pk(self.kwargs["pk"]))

    def retrieve(self, request, pk=None):
        return Response(AlertEventSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(request=None, responses=AlertEventSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Record that you saw the event (operators and up); a second acknowledgement answers 400."""
        event = services.alert_event_acknowledge(actor=request.user, event=self.get_object())
        return Response(AlertEventSerializer(event, context={"request": request}).data)


router = SimpleRouter()
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("alert-events", AlertEventViewSet, basename="alert-event")

urlpatterns = router.urls
