"""Permission-matrix rows for observability dashboards (see tests/matrix.py)."""

PAGES: list = []
API: list = []
