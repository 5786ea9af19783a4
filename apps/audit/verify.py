"""Walk the audit chain and find the first event that was altered, removed or inserted."""

from dataclasses import dataclass

from .models import GENESIS_HASH, AuditChainHead, AuditEvent


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    message: str
    first_bad_seq: int | None = None


def audit_chain_verify(*, batch_size: int = 2000) -> VerifyResult:
    """Return whether the chain is intact; otherwise name the first event that breaks it."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=last_id).order_by("seq")[:batch_size])
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                return VerifyResult(
                    False,
                    checked,
                    f"Event #{expected_seq} is missing: the chain jumps from #{expected_seq - 1} to #{event.seq}.",
                    expected_seq,
                )
            if event.prev_hash != prev_hash:
                return VerifyResult(
                    False,
                    checked,
                    f"Event #{event.seq} does not follow event #{event.seq - 1}: its previous hash does not match.",
                    event.seq,
                )
            if event.compute_hash() != event.hash:
                return VerifyResult(
                    False,
                    checked,
                    f"Event #{event.seq} ({event.action}, {event.created_at:%Y-%m-%d %H:%M:%S} UTC) was altered: its content no longer matches its hash.",
                    event.seq,
                )
            prev_hash = event.hash
            expected_seq += 1
            checked += 1
            last_id = event.seq
    head = AuditChainHead.objects.filter(id=1).first()
    head_seq = head.seq if head else 0
    if head_seq != checked:
        return VerifyResult(
            False,
            checked,
            f"Event #{checked + 1} is missing: the chain head says the last event is #{head_seq}.",
            checked + 1,
        )
    if head and head.hash != prev_hash:
        return VerifyResult(False, checked, f"Event #{head_seq} does not match the chain head's hash.", head_seq)
    return VerifyResult(True, checked, f"Audit chain intact: {checked} events verified.")
