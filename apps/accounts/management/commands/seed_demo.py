from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo organisation (idempotent) and print its login details."

    def add_arguments(self, parser):
        parser.add_argument("--allow-production", action="store_true", help="Seed even with FLEETDECK_ENV=production.")

    def handle(self, *args, **opts):
        if settings.PRODUCTION and not opts["allow_production"]:
            raise CommandError(
                "Refusing to seed demo users with known passwords in production. Pass --allow-production if you mean it."
            )
        result = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo organisation ready. Sign in at http://127.0.0.1:8000/login/ as:"))
        for username, roles in result["users"]:
            self.stdout.write(f"  {username:<8} {roles}")
        self.stdout.write(f"Password for every demo account: {result['password']}  (kept in {result['file']})")
