"""Thin Celery tasks for observability: evaluate alert rules, deliver alert webhooks, apply span retention."""

from platform_site.celery import app

# Seconds before delivery attempt 2, 3 and 4: a receiver that is down for a few minutes still gets the alert.
DELIVERY_BACKOFF = (10, 60, 300)


@app.task(name="observability.alerts_evaluate", time_limit=120, soft_time_limit=100, expires=59)
def alerts_evaluate() -> int:
    """Evaluate every enabled alert rule; return how many events fired."""
    from .services import alerts_evaluate as evaluate

    return evaluate()


@app.task(bind=True, name="observability.alert_deliver", time_limit=60, soft_time_limit=50, max_retries=None)
def alert_deliver(self, event_id: int) -> str:
    """Post one alert event to its rule's webhook; try again with backoff while the failure may pass."""
    from .services import alert_event_deliver

    outcome = alert_event_deliver(event_id)
    if outcome == "retry":
        # The service counts attempts on the event and gives up by itself; this only waits between them.
        countdown = DELIVERY_BACKOFF[min(self.request.retries, len(DELIVERY_BACKOFF) - 1)]
        raise self.retry(countdown=countdown)
    return outcome


@app.task(name="observability.spans_cleanup", time_limit=3600, soft_time_limit=3500, expires=3000)
def spans_cleanup() -> dict:
    """Delete spans and rollups past their retention."""
    from .services import spans_cleanup as cleanup

    return cleanup()
