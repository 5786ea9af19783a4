from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "created_at",
            "actor_type",
            "actor_id",
            "actor_label",
            "action",
            "outcome",
            "object_type",
            "object_id",
            "object_repr",
            "team_slug",
            "before",
            "after",
            "metadata",
            "request_id",
            "ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
