from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def usd(value) -> str:
    """Return a price as dollars with only the digits it needs: 0.075 -> $0.075, 3 -> $3.00."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    text = format(amount.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"
