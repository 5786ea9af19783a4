"""Management commands operators script against: create_api_token."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from apps.accounts.models import ApiToken


def test_create_api_token_prints_a_working_token_once(world, capsys):
    call_command("create_api_token", "--user", "oscar", "--team", "payments", "--scopes", "read,run")
    secret = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=world["operator"])
    assert sorted(token.scopes) == ["read", "run"] and secret.startswith(token.prefix)
    response = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200 and response.json()["username"] == "oscar"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "ghost", "--team", "payments"], "No active user 'ghost'"),
        (["--user", "oscar", "--team", "nope"], "No team with slug 'nope'"),
        (["--user", "oscar", "--team", "payments", "--scopes", "write"], "does not allow the scope write"),
        (["--user", "xavier", "--team", "payments"], "may not create tokens in payments"),
        (["--user", "oscar", "--team", "payments", "--scopes", "root"], "Unknown scope root"),
    ],
)
def test_create_api_token_explains_refusals(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args)
    assert not ApiToken.objects.filter(user__username=args[1], name__startswith="cli-").exists()
