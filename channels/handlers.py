"""Loaded at start in every process: registers the adapter of each channel kind."""

from __future__ import annotations

import channels.api
import channels.whatsapp.adapter  # noqa: F401 - registers the WhatsApp adapter
