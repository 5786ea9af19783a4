"""Every periodic task, in one place (STYLE.md 6). Each expires so a backlog never piles up."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "audit-chain-verify-nightly": {
        "task": "audit.chain_verify",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
    "runtime-reap-lost-runs": {
        "task": "runtime.run_reap",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "runtime-expire-approvals": {
        "task": "runtime.approvals_expire",
        "schedule": 60.0,
        "options": {"expires": 59},
    },
    "observability-evaluate-alerts": {
        "task": "observability.alerts_evaluate",
        "schedule": 60.0,
        "options": {"expires": 59},
    },
    "observability-spans-cleanup": {
        "task": "observability.spans_cleanup",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
