from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Team
from apps.core.exceptions import ServiceError
from apps.observability.seed import seed_spans, seed_trace


class Command(BaseCommand):
    help = (
        "Store realistic traces of a team's agents in bulk through the span store's write path "
        "(runs with model and tool calls, some failures; internal and external agents), for demos and benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--count", type=int, default=100_000, help="About how many spans to store.")
        parser.add_argument("--days", type=float, default=30, help="Spread the runs over the last this many days.")
        parser.add_argument("--batch", type=int, default=5000, help="Spans per write (one transaction each).")
        parser.add_argument("--seed", type=int, default=5, help="Random seed (a different one adds different traces).")
        parser.add_argument("--trace-spans", type=int, default=0, help="Also store one trace with this many spans.")

    def handle(self, *args, **opts):
        team = Team.objects.filter(slug=opts["team"]).first()
        if team is None:
            raise CommandError(f"No team '{opts['team']}': give the slug of an existing team (see /teams/).")
        every = max(opts["count"] // 20, opts["batch"])
        mark = {"next": every}

        def progress(stored: int, seconds: float) -> None:
            if stored >= mark["next"] or stored >= opts["count"]:
                mark["next"] += every
                self.stdout.write(f"{stored:,} spans in {seconds:.0f} s ({stored / max(seconds, 1e-9):,.0f} spans/s)")

        try:
            stored = seed_spans(
                team=team,
                count=opts["count"],
                days=opts["days"],
                batch=opts["batch"],
                seed=opts["seed"],
                progress=progress,
            )
            if opts["trace_spans"]:
                agent = team.agents.order_by("pk").first()
                trace_id = seed_trace(team=team, agent=agent, spans=opts["trace_spans"], seed=opts["seed"])
                self.stdout.write(f"Trace of {opts['trace_spans']} spans: /observability/traces/{trace_id}/")
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(f"Stored {stored:,} spans for team {team.slug}."))
