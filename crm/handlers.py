"""What the CRM records when other packages' events arrive: entries on the customer's timeline."""

from __future__ import annotations

from crm import services
from hub import events
from hub.runtime import current
from inbox.events import ConversationStarted


@events.handles(ConversationStarted, name="crm.conversation_started")
async def conversation_started(event: ConversationStarted) -> None:
    async with current().db.session(event.organization_id) as session:
        await services.record_activity(
            session,
            event.customer_id,
            "conversation_started",
            {"conversation_id": str(event.conversation_id), "channel_id": str(event.channel_id)},
            key=f"conversation:{event.conversation_id}",
            at=event.at,
        )
        await services.note_recent_message(session, event.customer_id)
        await session.commit()
