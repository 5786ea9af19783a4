from django.core.management.base import BaseCommand

from apps.catalog.services import catalog_seed_defaults


class Command(BaseCommand):
    help = "Add the default providers and models to the catalog (idempotent: existing rows are left as they are)."

    def handle(self, *args, **opts):
        created = catalog_seed_defaults()
        if not created["providers"] and not created["models"]:
            self.stdout.write("The catalog already has every default provider and model: nothing to add.")
            return
        if created["providers"]:
            self.stdout.write(f"Providers added: {', '.join(created['providers'])}")
        if created["models"]:
            self.stdout.write(f"Models added: {', '.join(created['models'])}")
        self.stdout.write(self.style.SUCCESS("Catalog ready."))
