"""The one span-writing path: storing, skipping repeats, rollups, prices at the time, redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from apps.catalog.models import Model, ModelPrice
from apps.catalog.services import catalog_seed_defaults, model_update
from apps.observability import pricing
from apps.observability.models import Span, SpanLatency, SpanRollup
from apps.observability.redaction import REDACTED
from apps.observability.rollups import BOUNDS_MS, bucket_of, percentile, rollup_rebuild, rollup_recount
from apps.observability.store import span_record, spans_write

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


def ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def chat(team, *, span_id="00000000000000b1", parent="00000000000000a1", model="gpt-4o-mini", at=T0, **attrs):
    return span_record(
        team_id=team.pk,
        source="otlp",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id=span_id,
        parent_span_id=parent,
        name=f"chat {model}",
        kind="client",
        start_ns=ns(at),
        end_ns=ns(at + timedelta(milliseconds=420)),
        status="ok",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200,
            **attrs,
        },
    )


def test_spans_are_stored_once_and_rollups_count_them_once(world):
    catalog_seed_defaults()
    records = [chat(world.team), chat(world.team, span_id="00000000000000b2")]
    assert len(spans_write(records)) == 2
    # An exporter's retry of the same batch stores and counts nothing again.
    assert spans_write([chat(world.team), chat(world.team, span_id="00000000000000b2")]) == []
    assert Span.objects.count() == 2
    [rollup] = SpanRollup.objects.all()
    assert rollup.span_count == 2 and rollup.input_tokens == 2000 and rollup.output_tokens == 400
    assert rollup.cost_usd == sum(s.cost_usd for s in Span.objects.all())
    assert sum(row.count for row in SpanLatency.objects.all()) == 2


def test_the_same_ids_in_another_team_are_another_span(world):
    spans_write([chat(world.team)])
    spans_write([chat(world.other_team)])
    assert Span.objects.filter(team=world.other_team).count() == 1


def test_a_model_call_is_priced_from_the_catalog_including_cached_tokens(world):
    catalog_seed_defaults()
    model = Model.objects.get(provider__name="openai", name="gpt-4o-mini")
    [span] = spans_write([chat(world.team, **{"gen_ai.usage.cache_read.input_tokens": 400})])
    expected = (
        Decimal(600) * model.input_price_per_mtok
        + Decimal(400) * model.cached_input_price_per_mtok
        + Decimal(200) * model.output_price_per_mtok
    ) / Decimal(1_000_000)
    assert span.cost_usd == expected.quantize(Decimal("0.000001"), ROUND_HALF_UP) and span.cached_tokens == 400


def test_a_call_is_priced_as_the_catalog_priced_it_at_the_time(world):
    catalog_seed_defaults()
    admin = world["admin"]
    model = Model.objects.get(provider__name="openai", name="gpt-4o-mini")
    old_in, old_out = model.input_price_per_mtok, model.output_price_per_mtok
    model_update(actor=admin, model=model, input_price_per_mtok=Decimal("10"), output_price_per_mtok=Decimal("20"))
    assert ModelPrice.objects.filter(model=model, input_price_per_mtok=old_in).exists()
    pricing.forget()
    before = span_record(**_chat_args(world, at=model.updated_at - timedelta(hours=1)))
    after = span_record(**_chat_args(world, at=model.updated_at + timedelta(seconds=1)))
    assert before.cost_usd == ((1000 * old_in + 200 * old_out) / Decimal(1_000_000)).quantize(
        Decimal("0.000001"), ROUND_HALF_UP
    )
    assert after.cost_usd == Decimal("0.014000")  # 1000 x $10/M + 200 x $20/M


def _chat_args(world, at):
    return dict(
        team_id=world.team.pk,
        source="otlp",
        trace_id="1" * 32,
        span_id="2" * 16,
        name="chat",
        start_ns=ns(at),
        end_ns=ns(at),
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200,
        },
    )


def test_a_dated_snapshot_name_is_priced_as_its_model_and_unknown_models_cost_nothing(world):
    catalog_seed_defaults()
    snapshot = chat(world.team, model="gpt-4o-mini-2024-07-18")
    plain = chat(world.team)
    assert snapshot.cost_usd == plain.cost_usd > 0
    unknown = chat(world.team, model="homegrown-llm")
    assert unknown.cost_usd == 0 and unknown.input_tokens == 1000


def test_agent_spans_do_not_count_their_childrens_tokens_again(world):
    agent_span = span_record(
        team_id=world.team.pk,
        source="otlp",
        trace_id="3" * 32,
        span_id="4" * 16,
        name="invoke_agent triage",
        start_ns=ns(T0),
        end_ns=ns(T0),
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 5000},
    )
    assert agent_span.is_run and agent_span.input_tokens == 0 and agent_span.cost_usd == 0


def test_a_trace_root_is_a_run_and_a_child_is_not(world):
    root = chat(world.team, parent="")
    child = chat(world.team)
    assert root.is_run and not child.is_run


def test_secrets_never_reach_the_store(world):
    [span] = spans_write(
        [
            chat(
                world.team,
                **{
                    "http.request.header.authorization": "Bearer abcdefghijklmnopqrstuvwxyz",
                    "db.password": "hunter2",
                    "app.api_key": "k-123",
                    "llm.note": "called with sk-proj-abcdefghijklmnopqrstuvwx ok",
                    "gen_ai.usage.output_tokens": 200,
                },
            )
        ]
    )
    stored = Span.objects.get(span_id=span.span_id).attributes
    assert stored["http.request.header.authorization"] == REDACTED
    assert stored["db.password"] == REDACTED and stored["app.api_key"] == REDACTED
    assert stored["llm.note"] == f"called with {REDACTED} ok"
    assert stored["gen_ai.usage.output_tokens"] == 200  # "tokens" is not a credential
    assert "hunter2" not in str(stored) and "sk-proj" not in str(stored)


def test_huge_attribute_values_are_capped(world):
    [span] = spans_write([chat(world.team, **{"big": "x" * 100_000})])
    assert len(Span.objects.get(span_id=span.span_id).attributes["big"]) < 3000


def test_percentiles_come_from_buckets_within_ten_percent():
    durations = [float(d) for d in range(1, 1001)]  # 1..1000 ms
    counts: dict[int, int] = {}
    for d in durations:
        counts[bucket_of(d)] = counts.get(bucket_of(d), 0) + 1
    assert abs(percentile(counts, 50) - 500) / 500 < 0.1
    assert abs(percentile(counts, 95) - 950) / 950 < 0.1
    assert percentile({}, 95) is None
    assert bucket_of(10**9) == len(BOUNDS_MS) - 1


def test_rebuild_recounts_rollups_from_raw_spans(world):
    catalog_seed_defaults()
    spans_write([chat(world.team, span_id=f"{i:016x}") for i in range(1, 6)])
    SpanRollup.objects.update(span_count=999)  # damaged
    rollup_rebuild(team_id=world.team.pk, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2))
    [rollup] = SpanRollup.objects.all()
    assert rollup.span_count == 5
    sums, _ = rollup_recount(team_id=world.team.pk, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2))
    assert [v["span_count"] for v in sums.values()] == [5]


def test_the_same_span_twice_in_one_batch_is_stored_and_counted_once(world):
    stored = spans_write([chat(world.team), chat(world.team)])
    assert len(stored) == 1 and Span.objects.count() == 1
    assert SpanRollup.objects.get().span_count == 1
