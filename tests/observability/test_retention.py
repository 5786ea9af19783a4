"""Span retention: old spans go in chunks, rollups stay until their own (longer) retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from apps.observability import services
from apps.observability.models import Span, SpanLatency, SpanRollup
from apps.observability.store import spans_write
from apps.observability.tasks import spans_cleanup as spans_cleanup_task
from tests.observability.test_alerts import external_span

pytestmark = pytest.mark.django_db


def test_cleanup_deletes_spans_past_retention_in_chunks_and_keeps_their_rollups(world, settings, monkeypatch):
    settings.FLEETDECK_SPAN_RETENTION_DAYS = 30
    settings.FLEETDECK_ROLLUP_RETENTION_DAYS = 400
    monkeypatch.setattr(services, "CLEANUP_CHUNK", 2)  # several statements per team, as with a real backlog
    now = timezone.now()
    spans_write([external_span(world.team, start=now - timedelta(days=31, minutes=i)) for i in range(5)])
    spans_write([external_span(world.other_team, start=now - timedelta(days=45))])
    kept = spans_write([external_span(world.team, start=now - timedelta(days=29)) for _ in range(2)])
    spans_write([external_span(world.team, start=now - timedelta(days=401))])
    assert SpanLatency.objects.filter(hour__lt=now - timedelta(days=400)).exists()

    counts = services.spans_cleanup(now=now)
    assert counts == {"spans": 7, "rollups": 1, "latency": 1}
    assert sorted(Span.objects.values_list("span_id", flat=True)) == sorted(r.span_id for r in kept)
    # Dashboards of past weeks still count the spans whose details are gone.
    assert SpanRollup.objects.aggregate(n=Sum("span_count"))["n"] == 5 + 1 + 2
    assert not SpanRollup.objects.filter(hour__lt=now - timedelta(days=400)).exists()
    assert not SpanLatency.objects.filter(hour__lt=now - timedelta(days=400)).exists()

    assert services.spans_cleanup(now=now) == {"spans": 0, "rollups": 0, "latency": 0}


def test_the_task_applies_the_configured_retention(world, settings):
    settings.FLEETDECK_SPAN_RETENTION_DAYS = 7
    now = timezone.now()
    spans_write([external_span(world.team, start=now - timedelta(days=8)), external_span(world.team, start=now)])
    assert spans_cleanup_task.apply().get() == {"spans": 1, "rollups": 0, "latency": 0}
    assert Span.objects.count() == 1
