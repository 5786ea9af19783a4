"""Search in a context space: PostgreSQL full-text search, or the SQLite fallback, with the same answers.

Run it on PostgreSQL too: DATABASE_URL=postgres://postgres@127.0.0.1:5432/fleetdeck_ctx pytest tests/context/test_search.py
"""

import pytest
from django.db import connection

from apps.context import services
from apps.context.models import ContextEntry
from apps.context.selectors import context_search
from apps.core.exceptions import ServiceError

RESULT_KEYS = {"id", "kind", "key", "title", "snippet", "rank", "author", "run_id", "updated_at"}


@pytest.fixture
def filled(world, space):
    add = services.context_entry_add
    actor = world["operator"]
    entries = {
        "policy": add(
            actor=actor,
            space=space,
            kind="fact",
            key="refund-policy",
            title="Refund policy",
            body="A refund is paid within 5 days. Every refund over 500 EUR needs a second person.",
        ),
        "shipping": add(
            actor=actor,
            space=space,
            kind="document",
            key="shipping",
            title="Shipping guide",
            body="Parcels leave the warehouse daily. "
            + "Tracking numbers arrive by email. " * 40
            + "A lost parcel is eligible for a refund.",
        ),
        "greeting": add(actor=actor, space=space, kind="fact", title="Greeting", body="Greet customers by first name."),
    }
    entries["decision"] = services.context_decision_record(
        actor=actor, space=space, title="Escalate refund disputes", rationale="Disputes over a refund go to tier two."
    )
    other = services.context_space_create(actor=world["builder"], team=world.team, name="other-space")
    add(actor=actor, space=other, kind="fact", title="Refund elsewhere", body="refund refund refund")
    return entries


def test_every_word_must_match_and_the_best_match_comes_first(space, filled):
    results = context_search(space=space, query="refund")
    assert {r["id"] for r in results} == {filled[k].pk for k in ("policy", "shipping", "decision")}
    assert results[0]["id"] == filled["policy"].pk  # in the title and twice in a short body
    assert all(set(r) == RESULT_KEYS for r in results)
    assert results[0]["rank"] >= results[1]["rank"] >= results[2]["rank"] > 0
    both = context_search(space=space, query="refund parcel")
    assert [r["id"] for r in both] == [filled["shipping"].pk]
    assert context_search(space=space, query="refund unicorn") == []


def test_snippets_mark_the_matched_words(space, filled):
    (hit,) = context_search(space=space, query="lost parcel")
    assert "«lost» «parcel»" in hit["snippet"] or "«lost» «parcel" in hit["snippet"], hit["snippet"]
    assert hit["kind"] == "document" and hit["key"] == "shipping" and hit["author"] == "oscar"
    assert len(hit["snippet"]) < 600  # a window around the match, not the whole document


def test_search_ignores_case_and_common_words(space, filled):
    assert [r["id"] for r in context_search(space=space, query="the GREETING")] == [filled["greeting"].pk]


def test_kind_and_limit(space, filled):
    assert [r["kind"] for r in context_search(space=space, query="refund", kind="decision")] == ["decision"]
    assert len(context_search(space=space, query="refund", limit=2)) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": "  "}, "q"),
        ({"query": "x" * 501}, "q"),
        ({"query": "refund", "limit": 0}, "limit"),
        ({"query": "refund", "limit": 51}, "limit"),
        ({"query": "refund", "kind": "rumour"}, "kind"),
    ],
)
def test_bad_searches_say_what_to_change(space, kwargs, field):
    with pytest.raises(ServiceError) as refused:
        context_search(space=space, **kwargs)
    assert refused.value.field == field


def test_postgresql_uses_the_full_text_index(space, filled):
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only (DATABASE_URL=postgres://...)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'contextentry_fts'")
        (definition,) = cursor.fetchone()
        assert "gin" in definition.lower() and "to_tsvector" in definition
    from django.contrib.postgres.search import SearchQuery, SearchVector

    # Across spaces, so the space's own index does not answer first: the planner must be able to use ours.
    query = (
        ContextEntry.objects.annotate(document=SearchVector("title", "body", config="english"))
        .filter(document=SearchQuery("refund", config="english", search_type="websearch"))
        .values("pk")
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()
    assert "contextentry_fts" in plan, plan
    # Stemming: the plural finds the singular.
    assert {r["id"] for r in context_search(space=space, query="refunds")} >= {filled["policy"].pk}
