"""What the API carries of people, organizations and a signed-in session."""

from __future__ import annotations

from hub import services
from hub.ai import ai_available
from hub.billing.services.limits import billing_on
from hub.models import Organization, User
from hub.permissions import permissions_of
from hub.runtime import current
from hub.schemas import (
    OrganizationOut,
    SessionOut,
    UserOut,
)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        preferred_language=user.preferred_language,
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def organization_out(organization: Organization) -> OrganizationOut:
    return OrganizationOut(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        default_language=organization.default_language,
        time_zone=organization.time_zone,
        default_region=organization.default_region,
    )


async def session_out(signed_in: services.SignedIn) -> SessionOut:
    runtime = current()
    async with runtime.db.session(signed_in.organization.id) as session:
        ai_on = await ai_available(runtime, session)
    return SessionOut(
        access_token=signed_in.token.token,
        token_type="bearer",
        expires_at=signed_in.token.expires_at,
        user=user_out(signed_in.user),
        organization=organization_out(signed_in.organization),
        permissions=permissions_of(signed_in.user.role),
        billing=billing_on(),
        ai=ai_on,
    )
