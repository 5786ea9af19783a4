"""Alert rules measured from real runs and real spans: firing once, clearing, delivery to a real webhook."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.exceptions import AccessDenied, ServiceError
from apps.observability import services
from apps.observability.models import AlertEvent, AlertKind, DeliveryStatus
from apps.observability.store import span_record, spans_write
from apps.observability.tasks import alert_deliver
from apps.runtime.models import RunStatus
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.django_db

FAIL_SCRIPT = [{"error": {"status": 400, "message": "the prompt is malformed"}}]
OK_SCRIPT = [{"answer": "Done."}]


def ns(moment) -> int:
    return int(moment.timestamp() * 1e9)


def external_span(team, *, start, duration_ms=10.0, trace_id=None, parent="", status="ok", tool_cost=None, agent=None):
    """Return an OTLP-like span (a run root without parent, or a tool call with its cost) for spans_write."""
    attributes = {}
    if tool_cost is not None:
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm.lookup"}
    return span_record(
        team_id=team.pk,
        source="otlp",
        trace_id=trace_id or secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        parent_span_id=parent,
        name="external work",
        start_ns=ns(start),
        end_ns=ns(start) + int(duration_ms * 1e6),
        status=status,
        attributes=attributes,
        agent_id=agent.pk if agent else None,
        agent_name=agent.name if agent else "",
        tool_cost_usd=Decimal(str(tool_cost)) if tool_cost is not None else None,
    )


def rule(world, kind, threshold, **fields):
    return services.alert_rule_create(
        actor=world["builder"], team=world.team, name=fields.pop("name", kind), kind=kind, threshold=threshold, **fields
    )


def events(r):
    return list(AlertEvent.objects.filter(rule=r).order_by("pk"))


# --- Failure rate, firing once, clearing -----------------------------------------------------------


def test_failure_rate_of_real_runs_fires_once_clears_and_fires_again(rt, world):
    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    steady = rt.agent("steady", script=OK_SCRIPT)
    for _ in range(3):
        assert rt.run(flaky).status == RunStatus.FAILED
    for _ in range(2):
        assert rt.run(steady).status == RunStatus.SUCCEEDED
    r = rule(world, AlertKind.FAILURE_RATE, 25, window_minutes=60)

    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.value == pytest.approx(60.0) and event.threshold == 25.0
    assert event.message == "Failure rate of runs of team Payments 60.0% (3 of 5) over the last 60 min is above 25%"
    assert event.delivery_status == DeliveryStatus.NONE
    fired = AuditEvent.objects.get(action="alert.fire")
    assert fired.actor_label == "system:alerts" and fired.object_id == str(event.pk) and fired.team_slug == "payments"
    r.refresh_from_db()
    assert r.firing and r.last_value == pytest.approx(60.0) and r.last_evaluated_at is not None

    assert services.alerts_evaluate() == 0, "a rule that still holds does not fire again"

    for _ in range(8):
        rt.run(steady)
    assert services.alerts_evaluate() == 0
    r.refresh_from_db()
    assert not r.firing and r.last_value == pytest.approx(3 / 13 * 100)
    assert AuditEvent.objects.filter(action="alert.clear", object_id=str(r.pk)).count() == 1

    for _ in range(4):
        rt.run(flaky)
    assert services.alerts_evaluate() == 1
    assert [round(e.value, 1) for e in events(r)] == [60.0, 41.2]


def test_failure_rate_needs_enough_runs_and_can_be_narrowed_to_an_agent(rt, world):
    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    steady = rt.agent("steady", script=OK_SCRIPT)
    for _ in range(4):
        rt.run(flaky)
    team_rule = rule(world, AlertKind.FAILURE_RATE, 10, name="team")
    assert services.alerts_evaluate() == 0
    team_rule.refresh_from_db()
    assert team_rule.last_value is None and not team_rule.firing, "4 runs are too few to judge (MIN_RUNS is 5)"

    for _ in range(6):
        rt.run(steady)
    steady_rule = rule(world, AlertKind.FAILURE_RATE, 10, name="steady only", agent=steady)
    assert services.alerts_evaluate() == 1
    assert events(team_rule) and not events(steady_rule)
    steady_rule.refresh_from_db()
    assert steady_rule.last_value == 0.0 and "agent steady" not in events(team_rule)[0].message


# --- Budget, cost rise, latency ------------------------------------------------------------------


def test_budget_rule_compares_this_months_spend_with_the_team_budget(rt, world):
    world.team.monthly_budget = Decimal("10.00")
    world.team.save()
    agent = rt.agent("spender", script=OK_SCRIPT)
    now = timezone.now()
    trace = secrets.token_hex(16)
    spans_write(
        [
            external_span(world.team, start=now, trace_id=trace, parent="ab" * 8, tool_cost=4.5, agent=agent),
            external_span(world.team, start=now, trace_id=trace, parent="ab" * 8, tool_cost=4.5, agent=agent),
        ]
    )
    r = rule(world, AlertKind.BUDGET_PERCENT, 80)
    other = rule(world, AlertKind.BUDGET_PERCENT, 80, name="other agent", agent=rt.agent("idle", script=OK_SCRIPT))
    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.value == pytest.approx(90.0)
    assert event.message == (
        "Spend of team Payments this month (9.00 USD) is 90.0% of the team's monthly budget of 10.00 USD, above 80%"
    )
    other.refresh_from_db()
    assert other.last_value == 0.0 and not events(other)


def test_budget_rule_without_a_team_budget_measures_nothing(rt, world):
    spans_write([external_span(world.team, start=timezone.now(), parent="ab" * 8, tool_cost=50)])
    r = rule(world, AlertKind.BUDGET_PERCENT, 1)
    assert services.alerts_evaluate() == 0
    r.refresh_from_db()
    assert r.last_value is None and r.last_evaluated_at is not None


def test_cost_rise_compares_the_last_seven_days_with_the_seven_before(rt, world):
    now = timezone.now()
    previous_week = [now - timedelta(days=9), now - timedelta(days=12)]
    spans_write([external_span(world.team, start=t, parent="ab" * 8, tool_cost=0.5) for t in previous_week])
    r = rule(world, AlertKind.COST_RISE, 20)
    assert services.alerts_evaluate() == 0, "cost fell from 1.00 USD to nothing: no rise"
    spans_write(
        [external_span(world.team, start=now - timedelta(days=d), parent="ab" * 8, tool_cost=1) for d in (1, 2)]
    )
    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.value == pytest.approx(100.0)
    assert "rose 100.0% week over week (1.00 USD to 2.00 USD in the last 7 days), above 20%" in event.message


def test_cost_rise_without_a_baseline_week_is_not_measured(rt, world):
    spans_write([external_span(world.team, start=timezone.now(), parent="ab" * 8, tool_cost=3)])
    r = rule(world, AlertKind.COST_RISE, 20)
    assert services.alerts_evaluate() == 0
    r.refresh_from_db()
    assert r.last_value is None


def test_latency_p95_of_runs_from_the_histograms(rt, world):
    now = timezone.now()
    spans_write([external_span(world.team, start=now - timedelta(seconds=5 * i), duration_ms=100) for i in range(10)])
    r = rule(world, AlertKind.LATENCY_P95, 1000, window_minutes=30)
    assert services.alerts_evaluate() == 0
    r.refresh_from_db()
    assert r.last_value == pytest.approx(100, rel=0.1) and not r.firing

    spans_write([external_span(world.team, start=now - timedelta(seconds=i), duration_ms=3000) for i in range(10)])
    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.value == pytest.approx(3000, rel=0.1) and event.threshold == 1000
    assert event.message.startswith("Latency p95 of runs of team Payments ") and "is above 1000 ms" in event.message


# --- Run cost ------------------------------------------------------------------------------------


def test_a_run_over_the_cost_fires_once_for_that_run(rt, world):
    with loopback_server(lambda request: request.reply(200, {"ok": True})) as server:
        rt.http_tool("ledger.charge", f"{server.url}/charge/{{q}}", cost_per_call=2.5)
        pricey = rt.agent(
            "pricey",
            tools=["ledger.charge"],
            limits={"max_cost_usd": 50},
            script=[{"call": [{"tool": "ledger.charge", "arguments": {"q": "a"}}]}, {"answer": "Charged."}],
        )
        cheap = rt.agent("cheap", script=OK_SCRIPT)
        expensive_run = rt.run(pricey)
        rt.run(cheap)
    assert expensive_run.status == RunStatus.SUCCEEDED and expensive_run.cost_usd > Decimal("2.5")
    r = rule(world, AlertKind.RUN_COST, "1.00", window_minutes=15)

    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.run_id == expensive_run.pk and event.value == pytest.approx(float(expensive_run.cost_usd))
    assert (
        event.message == f"Run {expensive_run.pk} of agent pricey cost {expensive_run.cost_usd:.4f} USD, above 1.00 USD"
    )
    assert services.alerts_evaluate() == 0, "the same run never fires twice"

    again = rt.run(pricey)
    assert services.alerts_evaluate() == 1
    assert [e.run_id for e in events(r)] == [expensive_run.pk, again.pk]


def test_an_external_trace_over_the_cost_fires_once(rt, world):
    now = timezone.now()
    trace = "c0ffee" + "0" * 26
    spans_write(
        [external_span(world.team, start=now, trace_id=trace)]
        + [external_span(world.team, start=now, trace_id=trace, parent="ab" * 8, tool_cost=0.7) for _ in range(2)]
    )
    spans_write([external_span(world.team, start=now, parent="ab" * 8, tool_cost=0.9)])  # another trace, under
    r = rule(world, AlertKind.RUN_COST, 1, window_minutes=10)
    assert services.alerts_evaluate() == 1
    [event] = events(r)
    assert event.run_id is None and event.value == pytest.approx(1.4)
    assert event.message == f"Trace {trace} of team Payments cost 1.4000 USD, above 1.00 USD"
    assert services.alerts_evaluate() == 0


# --- Rules: validation and permissions -----------------------------------------------------------


def test_rule_input_is_checked_with_clear_errors(world):
    cases = [
        ({"name": ""}, "name", "Give the rule a name"),
        ({"kind": "nope"}, "kind", "The kind must be one of budget_percent"),
        ({"threshold": "lots"}, "threshold", "must be a number"),
        ({"threshold": -1}, "threshold", "between 0 and"),
        ({"kind": AlertKind.FAILURE_RATE, "threshold": 100}, "threshold", "percentage below 100"),
        ({"kind": AlertKind.RUN_COST, "threshold": 0}, "threshold", "above 0"),
        ({"window_minutes": 0}, "window_minutes", "between 1 and 43200"),
        ({"webhook_url": "ftp://hooks.example.com/x"}, "webhook_url", "only http:// and https://"),
    ]
    for change, field, text in cases:
        data = {"name": "r", "kind": AlertKind.LATENCY_P95, "threshold": 5, **change}
        with pytest.raises(ServiceError) as caught:
            services.alert_rule_create(actor=world["builder"], team=world.team, **data)
        assert caught.value.field == field and text in caught.value.message, (change, caught.value.message)
    rule(world, AlertKind.LATENCY_P95, 5, name="dup")
    with pytest.raises(ServiceError, match="already has an alert rule named 'dup'"):
        rule(world, AlertKind.LATENCY_P95, 5, name="dup")


def test_another_teams_agent_cannot_be_named(rt, world):
    from apps.agents.services import agent_create

    draft = {"model": "simulated/sim-small", "prompt": {"inline": "You help."}}
    foreign = agent_create(actor=world["outsider"], team=world.other_team, name="theirs", draft_spec=draft)
    with pytest.raises(ServiceError, match="Agent theirs is not in team Payments") as caught:
        rule(world, AlertKind.LATENCY_P95, 5, agent=foreign)
    assert caught.value.field == "agent"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://10.1.2.3/hook", "private (RFC 1918)"),
        ("http://2130706433/hook", "non-standard spelling"),
        ("http://user:pw@hooks.example.com/", "user name or password"),
    ],
)
def test_internal_webhook_urls_are_refused_like_the_http_tools(world, settings, url, why):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    with pytest.raises(ServiceError) as caught:
        rule(world, AlertKind.LATENCY_P95, 5, webhook_url=url)
    assert caught.value.field == "webhook_url" and caught.value.code == "ssrf_refused"
    assert why in caught.value.message and caught.value.message.startswith("Alerts cannot be posted to")


def test_only_builders_and_up_manage_rules_and_operators_acknowledge(rt, world):
    with pytest.raises(AccessDenied):
        services.alert_rule_create(actor=world["viewer"], team=world.team, name="x", kind="latency_p95", threshold=1)
    with pytest.raises(AccessDenied):
        services.alert_rule_create(actor=world["operator"], team=world.team, name="x", kind="latency_p95", threshold=1)
    r = rule(world, AlertKind.FAILURE_RATE, 10)
    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    for _ in range(5):
        rt.run(flaky)
    services.alerts_evaluate()
    [event] = events(r)
    with pytest.raises(AccessDenied):
        services.alert_event_acknowledge(actor=world["viewer"], event=event)
    services.alert_event_acknowledge(actor=world["operator"], event=event)
    event.refresh_from_db()
    assert event.acknowledged_by == world["operator"] and event.acknowledged_at is not None
    audit = AuditEvent.objects.get(action="alert.acknowledge")
    assert audit.actor_label == "oscar" and audit.object_id == str(event.pk)
    with pytest.raises(ServiceError, match="already acknowledged by oscar"):
        services.alert_event_acknowledge(actor=world["owner"], event=event)


def test_update_and_delete_are_audited_and_a_new_kind_starts_fresh(world):
    r = rule(world, AlertKind.LATENCY_P95, 5)
    r.firing = True
    r.save()
    services.alert_rule_update(actor=world["owner"], rule=r, kind=AlertKind.FAILURE_RATE, threshold=30)
    r.refresh_from_db()
    assert r.kind == AlertKind.FAILURE_RATE and r.threshold == Decimal("30") and not r.firing
    update = AuditEvent.objects.get(action="alert_rule.update")
    assert update.before["kind"] == "latency_p95" and update.after["threshold"] == "30.0000"
    with pytest.raises(ServiceError, match="cannot be changed: team"):
        services.alert_rule_update(actor=world["owner"], rule=r, team=world.other_team)
    pk = r.pk
    services.alert_rule_delete(actor=world["owner"], rule=r)
    assert AuditEvent.objects.filter(action="alert_rule.delete", object_id=str(pk)).exists()


# --- Webhook delivery ----------------------------------------------------------------------------


def _fired_with_webhook(rt, world, url, django_capture_on_commit_callbacks):
    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    for _ in range(5):
        rt.run(flaky)
    r = rule(world, AlertKind.FAILURE_RATE, 50, name="Payments failures", webhook_url=url)
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.alerts_evaluate() == 1
    assert len(callbacks) == 1, "the delivery task is queued after the commit"
    [event] = events(r)
    assert event.delivery_status == DeliveryStatus.PENDING
    return r, event


def test_event_is_posted_to_the_webhook_as_json(rt, world, settings, django_capture_on_commit_callbacks):
    settings.FLEETDECK_BASE_URL = "https://fleetdeck.example.com"
    with loopback_server(lambda request: request.reply(204)) as server:
        r, event = _fired_with_webhook(
            rt, world, f"{server.url}/hooks/T0KEN?channel=ops", django_capture_on_commit_callbacks
        )
        assert alert_deliver.apply(args=[event.pk]).get() == "delivered"
    [received] = server.requests
    assert received.method == "POST" and received.path == "/hooks/T0KEN?channel=ops"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Fleetdeck-Event"] == "alert.fired"
    assert received.headers["X-Fleetdeck-Delivery"] == str(event.pk)
    body = received.json()
    assert body == {
        "id": event.pk,
        "event": "alert.fired",
        "rule": {"id": r.pk, "name": "Payments failures", "agent": None},
        "team": "payments",
        "kind": "failure_rate",
        "value": 100.0,
        "threshold": 50.0,
        "message": "Failure rate of runs of team Payments 100.0% (5 of 5) over the last 60 min is above 50%",
        "run_id": None,
        "fired_at": event.fired_at.isoformat(),
        "url": f"https://fleetdeck.example.com/observability/alerts/events/{event.pk}/",
    }
    event.refresh_from_db()
    assert event.delivery_status == DeliveryStatus.DELIVERED and event.delivery_attempts == 1
    assert event.delivery_error == ""


def test_a_failing_receiver_is_retried_then_recorded_as_failed(rt, world, django_capture_on_commit_callbacks):
    with loopback_server(lambda request: request.reply(503, "down for maintenance")) as server:
        _, event = _fired_with_webhook(rt, world, f"{server.url}/hook", django_capture_on_commit_callbacks)
        assert alert_deliver.apply(args=[event.pk]).get() == "failed"
    assert len(server.requests) == services.MAX_DELIVERY_ATTEMPTS
    assert {r.headers["X-Fleetdeck-Delivery"] for r in server.requests} == {str(event.pk)}
    event.refresh_from_db()
    assert event.delivery_status == DeliveryStatus.FAILED and event.delivery_attempts == 4
    assert "answered HTTP 503 Service Unavailable" in event.delivery_error
    assert "down for maintenance" in event.delivery_error and "Gave up after 4 attempts" in event.delivery_error
    assert "/hook" not in event.delivery_error.replace("/…", ""), "the URL's path may hold a token: not shown"


def test_a_refusing_receiver_is_not_retried(rt, world, django_capture_on_commit_callbacks):
    with loopback_server(lambda request: request.reply(404, "no such hook")) as server:
        _, event = _fired_with_webhook(rt, world, f"{server.url}/hook", django_capture_on_commit_callbacks)
        assert alert_deliver.apply(args=[event.pk]).get() == "failed"
    assert len(server.requests) == 1
    event.refresh_from_db()
    assert event.delivery_attempts == 1 and "HTTP 404" in event.delivery_error


def test_connection_refused_is_retried_and_recorded(rt, world, django_capture_on_commit_callbacks):
    with loopback_server(lambda request: request.reply(200)) as server:
        url = f"{server.url}/hook"
    _, event = _fired_with_webhook(rt, world, url, django_capture_on_commit_callbacks)  # the server is gone
    assert alert_deliver.apply(args=[event.pk]).get() == "failed"
    event.refresh_from_db()
    assert event.delivery_attempts == 4 and "The connection to http://127.0.0.1:" in event.delivery_error


def test_delivery_is_guarded_again_when_the_host_is_no_longer_allowed(
    rt, world, settings, django_capture_on_commit_callbacks
):
    with loopback_server(lambda request: request.reply(200)) as server:
        _, event = _fired_with_webhook(rt, world, f"{server.url}/hook", django_capture_on_commit_callbacks)
        settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
        assert alert_deliver.apply(args=[event.pk]).get() == "failed"
    assert server.requests == []
    event.refresh_from_db()
    assert event.delivery_attempts == 1 and "loopback" in event.delivery_error
