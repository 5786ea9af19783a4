"""Read settings from the environment, failing loudly when something required is missing.

Every setting the platform reads from the environment goes through these helpers (STYLE.md 7),
so an operator gets one clear message naming the variable and what it is for.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def get_from_env(name: str, default=None, *, required: bool = False, purpose: str = "") -> str | None:
    """Return the variable's value, or the default; raise naming the variable when required."""
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            hint = f" It is used for {purpose}." if purpose else ""
            raise ImproperlyConfigured(
                f"The environment variable {name} is required but not set.{hint} "
                f"Set it in the environment before starting Fleetdeck (see README, 'Production')."
            )
        return default
    return value


def get_bool(name: str, default: bool) -> bool:
    """Return the variable as a boolean; reject values that are not clearly true or false."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off.")


def get_int(name: str, default: int) -> int:
    """Return the variable as an integer; reject values that are not whole numbers."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def get_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty, stripped items."""
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]
