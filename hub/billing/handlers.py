"""Loaded at start in every process: billing hears every usage count (for the 80% and 100%
marks of the plan's limits)."""

from __future__ import annotations

from hub.billing.services.usage import note_count
from hub.services.usage import usage_listeners

usage_listeners.append(note_count)
