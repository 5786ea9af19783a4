from django.core.management.base import BaseCommand, CommandError

from apps.audit.verify import audit_chain_verify


class Command(BaseCommand):
    help = "Walk the audit hash chain and name the first altered, missing or inserted event."

    def handle(self, *args, **options):
        result = audit_chain_verify()
        if not result.ok:
            raise CommandError(f"AUDIT CHAIN BROKEN. {result.message} ({result.checked} events verified before it.)")
        self.stdout.write(self.style.SUCCESS(result.message))
