"""Observability tests reuse the runtime's `rt` helper to make real runs through the real engine."""

from tests.runtime.conftest import rt  # noqa: F401 - re-exported fixture
