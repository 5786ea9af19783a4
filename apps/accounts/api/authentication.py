"""`Authorization: Bearer <token>` authentication for the API."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.audit.models import Outcome
from apps.audit.services import audit_record

from ..models import ApiToken
from ..services import token_touch
from ..tokens import token_hash


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by an API token; refused tokens are audited as security events."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, credential = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        credential = credential.strip()
        if not credential or " " in credential or len(credential) > 200:
            self._refuse(request, "malformed", "The Authorization header must be 'Bearer <token>'.")
        token = ApiToken.objects.select_related("user", "team").filter(token_hash=token_hash(credential)).first()
        if token is None:
            self._refuse(request, "unknown", "This API token is not valid. Create a new one under API tokens.")
        if token.revoked_at:
            self._refuse(request, "revoked", "This API token was revoked. Create a new one under API tokens.", token)
        if token.expires_at and token.expires_at <= timezone.now():
            self._refuse(request, "expired", "This API token has expired. Create a new one under API tokens.", token)
        user = token.user
        if not user.is_active:
            self._refuse(request, "inactive_user", "The account this token belongs to is disabled.", token)
        token_touch(token=token)
        user._fleetdeck_token = token
        return user, token

    def authenticate_header(self, request):
        return self.keyword

    def _refuse(self, request, reason: str, message: str, token: ApiToken | None = None):
        audit_record(
            actor=None if token is None else f"token:{token.pk}",
            action="auth.token_refused",
            obj=token,
            team=token.team if token else None,
            outcome=Outcome.DENIED,
            metadata={"reason": reason, "path": request.path},
        )
        raise exceptions.AuthenticationFailed(message)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token created under API tokens."}
