"""Stream audit events as CSV or JSON Lines, in chain order, with their hashes for re-verification."""

import csv
import io
import json

from django.core.serializers.json import DjangoJSONEncoder

from .models import HASHED_FIELDS, canonical_time

EXPORT_FIELDS = [*HASHED_FIELDS, "prev_hash", "hash"]


def _row(event) -> dict:
    row = {name: getattr(event, name) for name in EXPORT_FIELDS}
    row["created_at"] = canonical_time(event.created_at)
    return row


def iter_jsonl(events):
    for event in events.order_by("seq").iterator(chunk_size=1000):
        yield json.dumps(_row(event), cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False) + "\n"


def iter_csv(events):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for event in events.order_by("seq").iterator(chunk_size=1000):
        row = _row(event)
        for key in ("before", "after", "metadata"):
            row[key] = json.dumps(row[key], cls=DjangoJSONEncoder, sort_keys=True) if row[key] is not None else ""
        # Cells starting with = + - @ are formulas in spreadsheets: quote them as text (CSV injection).
        row = {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()}
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
    if buffer.getvalue():
        yield buffer.getvalue()
