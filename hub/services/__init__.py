"""The kernel's business rules, one module per idea; everything callers use is re-exported here.

- `organizations`: registering, settings, modules in use
- `accounts`: signing in and out
- `passwords`: reset links, resets and changes
- `team`: invitations, roles, removal, profiles, what is assigned to whom
- `audit`, `usage` (per month, for billing)
"""

from __future__ import annotations

from hub.services.accounts import SignedIn, check_password, login, logout, normalize_email
from hub.services.audit import list_audit, record_audit
from hub.services.organizations import (
    create_organization,
    module_settings,
    slug_base,
    update_module_settings,
    update_organization,
)
from hub.services.passwords import (
    change_password,
    request_password_reset,
    reset_password,
    send_password_reset,
)
from hub.services.team import (
    accept_invitation,
    assigned_to,
    change_role,
    invite_user,
    list_users,
    pending_invitations,
    remove_user,
    revoke_invitation,
    update_profile,
)
from hub.services.usage import count_usage, usage_month, usage_of

__all__ = [
    "SignedIn",
    "accept_invitation",
    "assigned_to",
    "change_password",
    "change_role",
    "check_password",
    "count_usage",
    "create_organization",
    "invite_user",
    "list_audit",
    "list_users",
    "login",
    "logout",
    "module_settings",
    "normalize_email",
    "pending_invitations",
    "record_audit",
    "remove_user",
    "request_password_reset",
    "reset_password",
    "revoke_invitation",
    "send_password_reset",
    "slug_base",
    "update_module_settings",
    "update_organization",
    "update_profile",
    "usage_month",
    "usage_of",
]
