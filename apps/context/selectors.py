"""Reads of context spaces, filtered by what the user may see (another team's space is a 404).

Agents read through `context_space_for_agent`: an agent reaches a space only when its spec
lists the space (the request) and a builder granted it (the permission); writing needs both
to say write.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.selectors import team_list
from apps.core.exceptions import ServiceError

from .models import Access, ContextEntry, ContextGrant, ContextSpace, ContextState, ContextStateVersion, EntryKind

if TYPE_CHECKING:
    from apps.agents.models import Agent

SEARCH_LIMIT_MAX = 50
SNIPPET_START, SNIPPET_STOP = "«", "»"
# The SQLite fallback ranks at most this many matching entries in Python (the newest first).
FALLBACK_CANDIDATES = 500
MAX_QUERY_TERMS = 12
# Words PostgreSQL's English configuration ignores too, so both backends match the same entries.
STOP_WORDS = frozenset(
    "a about after all also an and any are as at be been but by can could did do does for from had has have he her "
    "him his how i if in into is it its me my no nor not of off on once only or other our out over own same she "
    "should so some such than that the their them then there these they this those through to too under until up "
    "very was we were what when where which while who whom why will with would you your".split()
)


def _count(model, **filters):
    rows = model.objects.filter(space=OuterRef("pk"), **filters).order_by().values("space")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()), 0)


def context_space_list(*, user, team=None, filters: dict | None = None) -> QuerySet[ContextSpace]:
    """Return the spaces of the teams the user may see (of one team if given), with their sizes.

    Filters: team (slug), q (name or description contains).
    """
    qs = ContextSpace.objects.filter(team__in=team_list(user=user)).select_related("team", "created_by")
    if team is not None:
        qs = qs.filter(team__slug=team) if isinstance(team, str) else qs.filter(team=team)
    filters = filters or {}
    if filters.get("team"):
        qs = qs.filter(team__slug=filters["team"])
    if filters.get("q"):
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(description__icontains=filters["q"]))
    # Subqueries, not joins: counting three relations through joins multiplies the rows.
    qs = qs.annotate(
        entry_count=_count(ContextEntry),
        decision_count=_count(ContextEntry, kind=EntryKind.DECISION),
        state_count=_count(ContextState),
        grant_count=_count(ContextGrant),
    )
    return qs.order_by("team__slug", "name")


def context_space_get(*, user, pk) -> ContextSpace:
    """Return the space if the user may see it, else raise Http404."""
    try:
        return context_space_list(user=user).get(pk=pk)
    except (ContextSpace.DoesNotExist, ValueError, TypeError):
        raise Http404("No such context space.") from None


def context_entry_list(*, space: ContextSpace, kind: str | None = None) -> QuerySet[ContextEntry]:
    """Return the space's entries (of one kind if given), most recently changed first."""
    qs = space.entries.all()
    if kind:
        if kind not in EntryKind.values:
            raise ServiceError(
                f"'{kind[:32]}' is not a kind of entry: use {', '.join(EntryKind.values)}.", field="kind"
            )
        qs = qs.filter(kind=kind)
    return qs.order_by("-updated_at", "-pk")


def context_entry_get(*, space: ContextSpace, pk) -> ContextEntry:
    """Return one entry of the space, else raise Http404."""
    try:
        return space.entries.get(pk=pk)
    except (ContextEntry.DoesNotExist, ValueError, TypeError):
        raise Http404("No such entry in this context space.") from None


def context_entry_by_key(*, space: ContextSpace, key: str) -> ContextEntry | None:
    """Return the fact or document with this key, or None."""
    return space.entries.filter(kind__in=[EntryKind.FACT, EntryKind.DOCUMENT], key=key).first()


def context_decision_list(*, space: ContextSpace) -> QuerySet[ContextEntry]:
    """Return the space's decision log, newest first."""
    return space.entries.filter(kind=EntryKind.DECISION).order_by("-created_at", "-pk")


def context_state_list(*, space: ContextSpace) -> QuerySet[ContextState]:
    """Return the space's state values by key."""
    return space.states.order_by("key")


def context_state_get(*, space: ContextSpace, key: str) -> ContextState:
    """Return the state with this key, else raise Http404."""
    found = space.states.filter(key=key).first()
    if found is None:
        raise Http404(f"No state '{key[:100]}' in context space {space.name}.")
    return found


def context_state_history(*, state: ContextState, limit: int = 50) -> QuerySet[ContextStateVersion]:
    """Return the values the state held, newest version first."""
    return state.versions.order_by("-version")[:limit]


def context_grant_list(*, space: ContextSpace) -> QuerySet[ContextGrant]:
    """Return which agents may read or write the space."""
    return space.grants.select_related("agent", "granted_by").order_by("agent__name")


def context_grant_get(*, space: ContextSpace, pk) -> ContextGrant:
    """Return one grant on the space, else raise Http404."""
    try:
        return context_grant_list(space=space).get(pk=pk)
    except (ContextGrant.DoesNotExist, ValueError, TypeError):
        raise Http404("No such grant on this context space.") from None


def context_grant_candidates(*, space: ContextSpace):
    """Return the agents a space may be granted to: the agents of its own team."""
    from apps.agents.models import Agent

    return Agent.objects.filter(team_id=space.team_id).order_by("name")


def context_grant_agent(*, space: ContextSpace, agent) -> Agent:
    """Return the agent of the space's team that `agent` names (an id or a name); raise ServiceError if none."""
    candidates = context_grant_candidates(space=space)
    if isinstance(agent, int) and not isinstance(agent, bool):
        found = candidates.filter(pk=agent).first()
    elif isinstance(agent, str) and agent.strip():
        text = agent.strip()
        found = candidates.filter(pk=int(text)).first() if text.isdigit() else candidates.filter(name=text).first()
    else:
        found = None
    if found is None:
        raise ServiceError(
            f"There is no agent '{str(agent)[:63]}' in team {space.team.slug}: a space is granted to its own team's agents.",
            field="agent",
        )
    return found


def _spec_spaces(spec) -> list[dict]:
    memory = spec.get("memory") if isinstance(spec, dict) else None
    spaces = memory.get("context_spaces") if isinstance(memory, dict) else None
    return [s for s in spaces if isinstance(s, dict)] if isinstance(spaces, list) else []


def context_space_requests(*, space: ContextSpace) -> list[dict]:
    """Return the agents of the team whose draft or channel versions ask for the space.

    Each row: {agent, access (the widest asked for), where (draft, staging, production), grant (or None)}.
    """
    from apps.agents.models import Agent

    grants = {g.agent_id: g for g in space.grants.all()}
    rows = []
    agents = Agent.objects.filter(team_id=space.team_id).prefetch_related("channels__version").order_by("name")
    for agent in agents:
        specs = [("draft", agent.draft_spec)] + [(c.name, c.version.spec) for c in agent.channels.all()]
        asked = {
            where: item.get("access", "read")
            for where, spec in specs
            for item in _spec_spaces(spec)
            if item.get("space") == space.name
        }
        if asked:
            access = Access.WRITE if Access.WRITE in asked.values() else Access.READ
            rows.append({"agent": agent, "access": access, "where": sorted(asked), "grant": grants.get(agent.pk)})
    return rows


# --- agents ---------------------------------------------------------------------------------


def _requested(spec_spaces) -> dict[str, str]:
    asked: dict[str, str] = {}
    for item in spec_spaces or []:
        if isinstance(item, dict) and isinstance(item.get("space"), str):
            access = Access.WRITE if item.get("access") == Access.WRITE else Access.READ
            if asked.get(item["space"]) != Access.WRITE:
                asked[item["space"]] = access
    return asked


def context_agent_access(*, agent, spec_spaces) -> dict[str, str]:
    """Return {space name: "read" | "write"} for the spaces the agent may use now.

    A space counts when the spec lists it and a grant exists; it is writable when both say write.
    """
    asked = _requested(spec_spaces)
    if not asked:
        return {}
    grants = ContextGrant.objects.filter(agent=agent, space__team_id=agent.team_id, space__name__in=list(asked))
    usable = {}
    for name, access in grants.values_list("space__name", "access"):
        both_write = asked[name] == Access.WRITE and access == Access.WRITE
        usable[name] = Access.WRITE if both_write else Access.READ
    return dict(sorted(usable.items()))


def context_space_for_agent(*, agent, spec_spaces, name, need: str = Access.READ) -> ContextSpace:
    """Return the space the agent names if it may use it as needed; else raise ServiceError saying who can fix it."""
    if not isinstance(name, str) or not name.strip():
        raise ServiceError(
            "Name the context space to use in the 'space' argument.", field="space", code="invalid_arguments"
        )
    name = name.strip()
    asked = _requested(spec_spaces)
    if name not in asked:
        listed = ", ".join(sorted(asked)) or "none"
        raise ServiceError(
            f"Agent {agent.name}'s spec does not list context space {name[:63]} (it lists: {listed}): add it under "
            "memory.context_spaces and publish a new version.",
            field="space",
            code="context_not_requested",
        )
    space = ContextSpace.objects.filter(team_id=agent.team_id, name=name).select_related("team").first()
    if space is None:
        raise ServiceError(
            f"There is no context space {name} in agent {agent.name}'s team: a builder creates it under Context.",
            field="space",
            code="context_space_missing",
        )
    grant = ContextGrant.objects.filter(space=space, agent=agent).first()
    if grant is None:
        raise ServiceError(
            f"Agent {agent.name} has no grant on context space {name}: a builder grants it on the space's page.",
            field="space",
            code="context_not_granted",
        )
    if need == Access.WRITE:
        if asked[name] != Access.WRITE:
            raise ServiceError(
                f"Agent {agent.name}'s spec lists context space {name} as read-only: set access: write under "
                "memory.context_spaces and publish a new version.",
                field="space",
                code="context_read_only",
            )
        if grant.access != Access.WRITE:
            raise ServiceError(
                f"Agent {agent.name} has no write grant on context space {name} (it may only read): a builder "
                "grants write on the space's page.",
                field="space",
                code="context_not_granted",
            )
    return space


# --- search ---------------------------------------------------------------------------------


def _terms(query: str) -> list[str]:
    seen: list[str] = []
    for word in re.findall(r"[^\W_]+", query.lower()):
        if word not in seen and word not in STOP_WORDS:
            seen.append(word)
    return seen[:MAX_QUERY_TERMS]


def context_search(*, space: ContextSpace, query: str, limit: int = 10, kind: str | None = None) -> list[dict]:
    """Return the space's entries that match every word of query, best first, each with a snippet.

    PostgreSQL ranks with its full-text search (English stemming, a GIN index); elsewhere the
    words are matched as substrings and ranked by how often they occur. Both answer
    [{id, kind, key, title, snippet, rank, author, run_id, updated_at}], matched words marked «so».
    """
    if not isinstance(query, str) or not query.strip():
        raise ServiceError("Type words to search for.", field="q")
    if len(query) > 500:
        raise ServiceError("The search is too long: use at most 500 characters.", field="q")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise ServiceError(f"limit must be a whole number from 1 to {SEARCH_LIMIT_MAX}.", field="limit")
    entries = context_entry_list(space=space, kind=kind or None)
    if connection.vendor == "postgresql":
        return _search_postgresql(entries, query.strip(), limit)
    return _search_fallback(entries, query, limit)


def _row(entry: ContextEntry, *, snippet: str, rank: float) -> dict:
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "key": entry.key,
        "title": entry.title,
        "snippet": snippet,
        "rank": round(float(rank or 0), 4),
        "author": entry.author,
        "run_id": entry.run_id,
        "updated_at": entry.updated_at,
    }


def _search_postgresql(entries: QuerySet, query: str, limit: int) -> list[dict]:
    from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector

    # The same expression as the GIN index of migration 0002, so PostgreSQL can use it.
    vector = SearchVector("title", "body", config="english")
    search = SearchQuery(query, config="english", search_type="websearch")
    found = (
        entries.annotate(document=vector)
        .filter(document=search)
        .annotate(
            rank=SearchRank(vector, search),
            snippet=SearchHeadline(
                "body",
                search,
                config="english",
                start_sel=SNIPPET_START,
                stop_sel=SNIPPET_STOP,
                max_words=35,
                min_words=12,
                max_fragments=2,
                fragment_delimiter=" … ",
            ),
        )
        .defer("body")
        .order_by("-rank", "-updated_at", "-pk")[:limit]
    )
    return [_row(e, snippet=e.snippet, rank=e.rank) for e in found]


def _search_fallback(entries: QuerySet, query: str, limit: int) -> list[dict]:
    terms = _terms(query)
    if not terms:
        return []
    for term in terms:
        entries = entries.filter(Q(title__icontains=term) | Q(body__icontains=term))
    scored = []
    for entry in entries[:FALLBACK_CANDIDATES]:
        title, body = entry.title.lower(), entry.body.lower()
        hits = sum(3 * title.count(t) + body.count(t) for t in terms)
        # Damp long documents a little, as PostgreSQL's rank does, so a short exact fact wins.
        score = hits / (1 + math.log1p(len(body.split())))
        scored.append((score, entry))
    scored.sort(key=lambda pair: (-pair[0], -pair[1].updated_at.timestamp(), -pair[1].pk))
    return [_row(entry, snippet=_snippet(entry.body, terms), rank=score) for score, entry in scored[:limit]]


def _snippet(body: str, terms: list[str], width: int = 240) -> str:
    """Return the part of body where most of the words occur together, each word marked «like this»."""
    lower = body.lower()
    hits = sorted((m.start(), t) for t in terms for m in re.finditer(re.escape(t), lower))[:500]
    best, best_count = 0, 0
    for position, _ in hits:
        count = len({t for p, t in hits if position <= p < position + width * 2 // 3})
        if count > best_count:
            best, best_count = position, count
    start = max(0, best - width // 3)
    end = min(len(body), start + width)
    if start:
        space = body.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < 30 else start
    if end < len(body):
        space = body.find(" ", end)
        end = space if 0 <= space - end < 30 else end
    text = " ".join(body[start:end].split())
    words = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    # Mark whole words, as PostgreSQL's headline does: "parcel" marks «Parcels».
    text = re.sub(
        rf"\w*(?:{words})\w*", lambda m: f"{SNIPPET_START}{m.group(0)}{SNIPPET_STOP}", text, flags=re.IGNORECASE
    )
    return ("… " if start else "") + text + (" …" if end < len(body) else "")
