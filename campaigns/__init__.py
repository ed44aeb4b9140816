"""Bulk campaigns: recipients, templates, throttled sending, progress and results."""
