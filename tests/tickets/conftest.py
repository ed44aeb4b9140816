"""Tickets' tests use the inbox's local webhook receiver to make API channels."""

from tests.inbox.conftest import receiver  # noqa: F401 - a fixture, found by its name
