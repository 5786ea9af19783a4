"""The demo's runs are real runs of the engine: they search the demo's context and wait for people."""

import pytest

from apps.accounts.demo import ADMIN_USERNAME, seed_demo
from apps.accounts.models import User
from apps.agents.demo import seed_demo_fleet
from apps.context.demo import seed_demo_context
from apps.runtime.demo import seed_demo_runs
from apps.runtime.engine import run_execute
from apps.runtime.models import Approval, Run, RunStatus, StepKind

pytestmark = pytest.mark.django_db


def test_demo_runs_execute_on_the_simulated_model(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    seed_demo()
    seed_demo_fleet(admin=User.objects.get(username=ADMIN_USERNAME))
    assert "payments/payments-kb" in seed_demo_context()
    ids = seed_demo_runs()
    assert len(ids) == 5
    for run_id in ids:
        run_execute(run_id=run_id, worker="demo-worker:1")
    runs = {run.pk: run for run in Run.objects.filter(pk__in=ids).select_related("agent")}
    faq = [r for r in runs.values() if r.agent.name == "merchant-faq"]
    assert all(r.status == RunStatus.SUCCEEDED and r.simulated for r in faq)
    fees = next(r for r in faq if "fees" in r.input["question"])
    assert "1.4%" in fees.output  # found by the context search in the payments knowledge base
    assert fees.steps.filter(kind=StepKind.TOOL, name="payments.kb_search").exists()
    refund = next(r for r in runs.values() if r.agent.name == "refund-assistant")
    assert refund.status == RunStatus.WAITING
    assert Approval.objects.get(run=refund).tool_name == "stripe.refund"
    # Seeding again queues nothing more, and creates no space twice.
    assert seed_demo_runs() == [] and seed_demo_context() == []
