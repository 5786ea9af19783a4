"""Permission-matrix rows for the catalog area (see tests/matrix.py)."""

from tests.matrix import everyone  # noqa: F401

PAGES: list = []
API: list = []


def setup(world) -> dict:
    """Create what this area's rows refer to; return ids for the paths' placeholders."""
    return {}
