"""Permission-matrix rows for observability traces (see tests/matrix.py)."""

PAGES: list = []
API: list = []
