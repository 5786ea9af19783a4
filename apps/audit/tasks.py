"""Periodic verification of the audit chain, so tampering is noticed without anyone asking."""

import logging

from platform_site.celery import app

from .services import audit_record
from .verify import audit_chain_verify

logger = logging.getLogger(__name__)


@app.task(name="audit.chain_verify", time_limit=1800, soft_time_limit=1700, expires=3600)
def chain_verify() -> bool:
    """Verify the chain and record the outcome as an audit event (an error log when broken)."""
    result = audit_chain_verify()
    if not result.ok:
        logger.error("Audit chain verification failed: %s", result.message)
    audit_record(
        actor="system:audit_verify",
        action="audit.verify",
        outcome="success" if result.ok else "failure",
        metadata={"checked": result.checked, "message": result.message, "first_bad_seq": result.first_bad_seq},
    )
    return result.ok
