from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import ServiceError
from apps.governance import crypto
from apps.governance.services import secret_rotate_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret with the newest key of FLEETDECK_SECRET_KEYS, in one transaction (audited). "
        "To rotate: put a new key first in FLEETDECK_SECRET_KEYS (keep the old ones after it), restart, run this, "
        "then remove the old keys."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate",
            action="store_true",
            help="Only print a new random key to put first in FLEETDECK_SECRET_KEYS; change nothing.",
        )

    def handle(self, *args, **opts):
        if opts["generate"]:
            self.stdout.write(crypto.generate_key())
            return
        try:
            count = secret_rotate_key()
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        keys = len(crypto.configured_keys())
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secret(s) with the newest of {keys} key(s)."))
        if keys > 1:
            self.stdout.write(
                "Every secret now uses the first key: the others can be removed from FLEETDECK_SECRET_KEYS."
            )
