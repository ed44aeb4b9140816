"""Loaded at start in every process: registers the adapter of each channel kind."""

from __future__ import annotations

import channels.api  # noqa: F401 - registers the API channel adapter
