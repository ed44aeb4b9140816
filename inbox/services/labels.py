"""Labels: an organization's own, put on conversations."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from crm.models import Customer
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from inbox.models import Conversation, ConversationLabel, Label
from inbox.services.conversations import conversation_for_user
from inbox.views import push_conversation

log = structlog.get_logger(__name__)


async def create_label(session: HubAsyncSession, *, name: str, color: str) -> Label:
    label = Label(name=name.strip(), color=color)
    session.add(label)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(N_("A label with this name already exists."), field="name") from None
    await session.commit()
    return label


async def delete_label(session: HubAsyncSession, label_id: uuid.UUID) -> None:
    label = await session.get(Label, label_id)
    if label is None:
        raise NotFound()
    await session.delete(label)
    await session.commit()


async def set_labels(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID, names: list[str]
) -> tuple[Conversation, Customer]:
    """Replace a conversation's labels; every name must be one of the organization's labels."""
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    wanted = {name.strip() for name in names}
    labels = list(await session.scalars(select(Label).where(Label.name.in_(wanted)))) if wanted else []
    unknown = wanted - {label.name for label in labels}
    if unknown:
        raise InvalidInput(N_("Unknown label: {name}."), field="labels", name=sorted(unknown)[0])
    await session.execute(
        delete(ConversationLabel)
        .where(ConversationLabel.conversation_id == conversation.id)
        .execution_options(synchronize_session=False)
    )
    session.add_all(ConversationLabel(conversation_id=conversation.id, label_id=label.id) for label in labels)
    await session.flush()
    await push_conversation(session, conversation, customer)
    await session.commit()
    return conversation, customer
