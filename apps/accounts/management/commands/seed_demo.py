from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.demo import ADMIN_USERNAME, seed_demo
from apps.accounts.models import Team, User
from apps.agents.demo import fleet_counts, seed_demo_fleet
from apps.context.demo import demo_context_count, seed_demo_context
from apps.observability.demo import demo_external_trace_count, seed_demo_alert_rules, seed_demo_external_traces
from apps.runtime.demo import demo_run_count, seed_demo_runs


class Command(BaseCommand):
    help = "Create the demo organisation and its agent fleet (idempotent) and print the login details."

    def add_arguments(self, parser):
        parser.add_argument("--allow-production", action="store_true", help="Seed even with FLEETDECK_ENV=production.")

    def handle(self, *args, **opts):
        if settings.PRODUCTION and not opts["allow_production"]:
            raise CommandError(
                "Refusing to seed demo users with known passwords in production. Pass --allow-production if you mean it."
            )
        result = seed_demo()
        fleet = seed_demo_fleet(admin=User.objects.get(username=ADMIN_USERNAME))
        seed_demo_context()
        seed_demo_runs()
        # An agent built elsewhere, seen through OTLP ingest beside the fleet's own runs.
        support = Team.objects.get(slug="support")
        seed_demo_external_traces(support)
        alert_rules = seed_demo_alert_rules(admin=User.objects.get(username=ADMIN_USERNAME))
        counts = fleet_counts()  # after the external agent registered itself through ingest
        self.stdout.write(self.style.SUCCESS("Demo organisation ready. Sign in at http://127.0.0.1:8000/login/ as:"))
        for username, roles in result["users"]:
            self.stdout.write(f"  {username:<8} {roles}")
        self.stdout.write(f"Password for every demo account: {result['password']}  (kept in {result['file']})")
        # Totals, not what this run created: a re-run prints the same lines.
        self.stdout.write(
            f"Demo fleet in teams {', '.join(fleet['teams'])}: {counts['agents']} agents "
            f"({counts['active_agents']} active), {counts['tools']} tools, {counts['prompts']} prompts, "
            f"{counts['secrets']} secrets (values random, never shown). See /agents/inventory/."
        )
        self.stdout.write(
            f"Shared context: {demo_context_count()} spaces. Demo runs on the simulated model: {demo_run_count()} "
            "(queued ones run as soon as a worker starts; see /runs/ and /approvals/)."
        )
        self.stdout.write(
            f"External agent traces (OTLP) in team {support.slug}: {demo_external_trace_count(support)}. "
            "Dashboards: /observability/; traces: /observability/traces/?range=7d."
        )
        self.stdout.write(f"Alert rules evaluated every minute by beat: {alert_rules} (see /observability/alerts/).")
