"""Ticket rules, one module per idea; everything callers use is re-exported here.

- `tickets`: creating, listing, changing, the status workflow, assignment, the customer writing back
- `comments`: the team's comments and public replies
- `sla`: SLA clocks in business time, warnings and breaches
- `settings`: business hours, holidays, suggestion rules and SLA policies
- `reports`: the SLA report
- `suggestions`: tickets suggested from inbound messages
- `access`: who sees and changes which ticket, the workflow, the ticket's timeline lines

What the API and sockets carry of tickets is `tickets.views`.
"""

from __future__ import annotations

from tickets.services.access import (
    CLOCK_RUNS,
    CONTEXT_MESSAGES,
    DONE,
    ROLES_ASSIGNING,
    ROLES_SEEING_ALL,
    TRANSITIONS,
    WARN_SHARE,
    entries_about_hidden_tickets,
    push_to_audience,
    ticket_for_user,
    visible_tickets,
)
from tickets.services.assist import summarize_ticket
from tickets.services.comments import add_comment, list_comments
from tickets.services.reports import sla_report
from tickets.services.settings import (
    DEFAULT_SUGGESTION_RULES,
    business_calendar,
    calendar_of,
    delete_policy,
    list_policies,
    set_policy,
    settings_out,
    ticket_settings,
    update_settings,
)
from tickets.services.sla import check_sla, fire_due, sweep_sla
from tickets.services.suggestions import matching_rule, suggest_ticket
from tickets.services.tickets import (
    assign_ticket,
    create_ticket,
    customers_wrote_since,
    list_tickets,
    move_tickets,
    responded_in_chat,
    timeline,
    update_ticket,
)
from tickets.views import comment_out, ticket_out

__all__ = [
    "CLOCK_RUNS",
    "CONTEXT_MESSAGES",
    "DEFAULT_SUGGESTION_RULES",
    "DONE",
    "ROLES_ASSIGNING",
    "ROLES_SEEING_ALL",
    "TRANSITIONS",
    "WARN_SHARE",
    "add_comment",
    "assign_ticket",
    "business_calendar",
    "calendar_of",
    "check_sla",
    "comment_out",
    "create_ticket",
    "customers_wrote_since",
    "delete_policy",
    "entries_about_hidden_tickets",
    "fire_due",
    "list_comments",
    "list_policies",
    "list_tickets",
    "matching_rule",
    "move_tickets",
    "push_to_audience",
    "responded_in_chat",
    "set_policy",
    "settings_out",
    "sla_report",
    "suggest_ticket",
    "summarize_ticket",
    "sweep_sla",
    "ticket_for_user",
    "ticket_out",
    "ticket_settings",
    "timeline",
    "update_settings",
    "update_ticket",
    "visible_tickets",
]
