"""Password login, limited by FLEETDECK_PASSWORD_LOGIN ("all", "break-glass" or "off")."""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def password_login_mode() -> str:
    mode = settings.FLEETDECK_PASSWORD_LOGIN
    return mode if mode in {"all", "break-glass", "off"} else "off"


class LocalPasswordBackend(ModelBackend):
    """Authenticate with a username and password, when the password login mode allows the account."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        mode = password_login_mode()
        if mode == "all":
            return True
        return mode == "break-glass" and user.is_break_glass
