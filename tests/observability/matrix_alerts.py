"""Permission-matrix rows for observability alerts (see tests/matrix.py)."""

PAGES: list = []
API: list = []
