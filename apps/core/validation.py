"""Turn model validation into the ServiceError every service raises."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from .exceptions import ServiceError


def full_clean_or_error(obj, *, exclude=None, validate_unique: bool = True) -> None:
    """Validate a model instance; raise the first error as a ServiceError naming its field.

    Multi-column unique constraints are left to the service, which says in words what clashes.
    """
    try:
        obj.full_clean(exclude=exclude, validate_unique=validate_unique, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(messages[0], field=None if field == "__all__" else field) from None


def add_service_error(form, exc: ServiceError, field_for=None) -> None:
    """Show a service's refusal on the form: beside the field it names, else at the top."""
    name = field_for(exc.field) if field_for else exc.field
    form.add_error(name if name in form.fields else None, exc.message)


# Names of registry objects (tools, prompts, agents): referred to in specs as name@version.
registry_name_validator = RegexValidator(
    r"^[a-z][a-z0-9_.-]{0,62}$", "Start with a letter; use lowercase letters, digits, dots, dashes and underscores."
)
