"""API access: sign-in required, and a token's scopes bound what it may do at all."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..models import TokenScope


class TokenScopePermission(BasePermission):
    """Require authentication; a token needs `read` for reads and the view's scope for writes.

    A view declares `write_scope` when its writes need another scope (for example `run`).
    Which objects and actions are allowed is decided by the services and selectors.
    """

    message = "This API token lacks the scope this request needs."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        token = request.auth if hasattr(request.auth, "scopes") else None
        if token is None:
            return True
        needed = TokenScope.READ if request.method in SAFE_METHODS else getattr(view, "write_scope", TokenScope.WRITE)
        if needed not in token.scopes:
            self.message = (
                f"This API token lacks the '{needed}' scope this request needs (it has: {', '.join(token.scopes)})."
            )
            from apps.audit.services import audit_denial

            audit_denial(actor=request.user, perm=f"scope:{needed}", team=token.team, path=request.path)
            return False
        return True
