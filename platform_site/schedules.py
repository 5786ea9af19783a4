"""Every periodic task, in one place (STYLE.md 6). Each expires so a backlog never piles up."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "audit-chain-verify-nightly": {
        "task": "audit.chain_verify",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
}
