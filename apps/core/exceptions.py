"""Exceptions that services raise and the web layer turns into clear answers."""

from django.core.exceptions import PermissionDenied


class AccessDenied(PermissionDenied):
    """Raise when an actor lacks a permission; carries what was asked so the denial is audited."""

    def __init__(self, *, perm: str, team=None, obj=None, message: str = ""):
        self.perm = perm
        self.team = team
        self.obj = obj
        self.message = (
            message or f"You do not have the permission '{perm}' here. Ask a team owner for the role you need."
        )
        super().__init__(self.message)


class ServiceError(Exception):
    """Raise when input is valid in form but refused by a rule; the message says how to fix it.

    `field` names the input at fault so forms and serializers can show the error beside it.
    """

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        self.message = message
        self.field = field
        self.code = code
        super().__init__(message)
