from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.accounts.services import token_create
from apps.core.exceptions import AccessDenied, ServiceError


class Command(BaseCommand):
    help = "Create an API token for a user in a team and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username the token acts for.")
        parser.add_argument("--team", required=True, help="Slug of the team the token acts in.")
        parser.add_argument("--scopes", default="read", help="Comma-separated: read, write, run, ingest.")
        parser.add_argument("--name", default="", help="Where the token is used (default: cli-<date>).")
        parser.add_argument("--days", type=int, default=None, help="Expire after this many days (default: never).")

    def handle(self, *args, **opts):
        user = User.objects.filter(username=opts["user"], is_active=True).first()
        if user is None:
            raise CommandError(
                f"No active user '{opts['user']}'. Check the username (seed_demo prints the demo users)."
            )
        team = Team.objects.filter(slug=opts["team"]).first()
        if team is None:
            raise CommandError(f"No team with slug '{opts['team']}'.")
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        expires = timezone.now() + timedelta(days=opts["days"]) if opts["days"] else None
        name = opts["name"] or f"cli-{timezone.now():%Y%m%d-%H%M}"
        try:
            _token, secret = token_create(actor=user, team=team, name=name, scopes=scopes, expires_at=expires)
        except AccessDenied as exc:
            raise CommandError(f"{user.username} may not create tokens in {team.slug}: {exc.message}") from None
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(secret)
        self.stderr.write(
            f"Token '{name}' for {user.username} in {team.slug} with scopes {', '.join(sorted(scopes))}. It is shown only once."
        )
