from django.core.management import call_command

from apps.catalog.models import Model, Provider


def test_seed_catalog_adds_the_defaults_once(db, capsys):
    call_command("seed_catalog")
    out = capsys.readouterr().out
    assert "Providers added: simulated, openai, anthropic" in out and "simulated/sim-small" in out
    call_command("seed_catalog")
    assert "nothing to add" in capsys.readouterr().out
    assert Provider.objects.count() == 3 and Model.objects.count() == 7
