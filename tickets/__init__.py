"""Tickets, comments, attachments, assignment, SLA policies and breaches."""
