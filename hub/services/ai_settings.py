"""An organization's own AI server: set by its admins (the address checked as any address a
tenant gives, the key sealed), read back without the key, removed to use the installation's."""

from __future__ import annotations

from msgspec import UNSET
from sqlalchemy import select

from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.models import AISettings
from hub.outbound import OutboundRefused, check_url
from hub.runtime import Runtime
from hub.schemas import AISettingsIn, AISettingsOut
from hub.sealing import seal
from hub.services.audit import record_audit


async def ai_settings_of(runtime: Runtime, session: HubAsyncSession) -> AISettingsOut:
    own = await session.scalar(select(AISettings))
    if own is not None:
        return AISettingsOut(
            source="organization",
            base_url=own.base_url,
            model=own.model,
            embeddings_model=own.embeddings_model,
            has_key=own.api_key_sealed is not None,
        )
    installation = runtime.settings.ai_base_url and runtime.settings.ai_model
    # The installation's server is the operator's: its address and key are not a tenant's to see.
    return AISettingsOut(source="installation" if installation else "none")


async def save_ai_settings(
    runtime: Runtime, session: HubAsyncSession, actor: CurrentUser, data: AISettingsIn
) -> AISettingsOut:
    """Use this organization's own server from now on. The address must be one the hub may call
    (public http or https, unless the operator allows it); a key left out stays as it was, and
    null removes it."""
    try:
        await check_url(runtime.settings.outbound_policy, data.base_url)
    except OutboundRefused:
        raise InvalidInput(
            N_("The hub does not call this address: it must be a public http or https address."),
            field="base_url",
        ) from None
    own = await session.scalar(select(AISettings))
    if own is None:
        own = AISettings(base_url=data.base_url, model=data.model, api_key_sealed=None)
        session.add(own)
    own.base_url, own.model = data.base_url.rstrip("/"), data.model.strip()
    own.embeddings_model = (data.embeddings_model or "").strip() or None
    if data.api_key is not UNSET:
        own.api_key_sealed = seal(runtime.settings, data.api_key) if data.api_key else None
    await record_audit(
        session,
        actor_id=actor.id,
        action="settings.ai_changed",
        object_type="organization",
        object_id=actor.organization_id,
        # The key itself is never written anywhere but sealed in its row.
        changes={
            "base_url": own.base_url,
            "model": own.model,
            "embeddings_model": own.embeddings_model,
            "api_key": "changed" if data.api_key is not UNSET else "kept",
        },
    )
    await session.commit()
    return await ai_settings_of(runtime, session)


async def remove_ai_settings(runtime: Runtime, session: HubAsyncSession, actor: CurrentUser) -> AISettingsOut:
    """Back to the installation's server (or none)."""
    own = await session.scalar(select(AISettings))
    if own is None:
        raise NotFound()
    await session.delete(own)
    await record_audit(
        session,
        actor_id=actor.id,
        action="settings.ai_removed",
        object_type="organization",
        object_id=actor.organization_id,
        changes={},
    )
    await session.commit()
    return await ai_settings_of(runtime, session)
