"""The inbox's rules, one module per idea; everything callers use is re-exported here.

- `inbound`: storing what customers send, receipts, the durable record of who wrote
- `replies`: queueing, sending, retrying and settling the team's replies
- `conversations`: who reads which, listing, assignment, status, read state
- `editing`: editing, deleting and forwarding messages
- `routing`: automatic assignment round the online agents
- `labels`, `canned_responses`, `search`, `campaign_messages`
- `assist`: AI help for the agent (a reply suggested, a draft improved, translation, a summary)

What the inbox shows (messages and conversations out, who hears of them) is `inbox.views`.
"""

from __future__ import annotations

from inbox.services.assist import improve_draft, suggest_reply, summarize, translate_text
from inbox.services.assistant import answer as assistant_answer
from inbox.services.assistant import (
    assistant_report,
    assistant_settings,
    message_arrived,
    update_assistant_settings,
)
from inbox.services.campaign_messages import record_campaign_messages
from inbox.services.canned_responses import (
    delete_canned_response,
    list_canned_responses,
    save_canned_response,
)
from inbox.services.conversations import (
    assign,
    conversation_cursor,
    conversation_for_user,
    entries_about_hidden_conversations,
    list_conversations,
    mark_read,
    move_conversations,
    send_read_receipts,
    update_conversation,
    visible_conversations,
    wake_snoozed,
)
from inbox.services.editing import change_on_channel, delete_message, edit_message, forward_message
from inbox.services.inbound import (
    WROTE_BATCH,
    WROTE_FIRST_LOOKBACK,
    WROTE_GRACE,
    WROTE_MARK,
    apply_receipt,
    publish_who_wrote,
    store_inbound,
)
from inbox.services.knowledge import (
    article,
    delete_article,
    embed_article,
    list_articles,
    save_article,
    search_articles,
)
from inbox.services.labels import create_label, delete_label, set_labels
from inbox.services.replies import (
    IN_DOUBT,
    RETRY_DELAYS,
    deliver,
    refuse_disconnected,
    reply,
    requeue_stalled,
    retry_delay,
    send_ticket_reply,
    settle_reply,
)
from inbox.services.routing import ASSIGN_BATCH, inbox_settings, update_inbox_settings
from inbox.services.search import search_messages
from inbox.views import (
    STATUS_ORDER,
    attachments_of,
    conversation_out,
    conversation_view,
    conversation_views,
    labels_of,
    message_out,
    message_with_media,
    push_conversation,
    push_to_audience,
)

__all__ = [
    "ASSIGN_BATCH",
    "IN_DOUBT",
    "RETRY_DELAYS",
    "STATUS_ORDER",
    "WROTE_BATCH",
    "WROTE_FIRST_LOOKBACK",
    "WROTE_GRACE",
    "WROTE_MARK",
    "apply_receipt",
    "article",
    "assign",
    "assistant_answer",
    "assistant_report",
    "assistant_settings",
    "attachments_of",
    "change_on_channel",
    "conversation_cursor",
    "conversation_for_user",
    "conversation_out",
    "conversation_view",
    "conversation_views",
    "create_label",
    "delete_article",
    "delete_canned_response",
    "delete_label",
    "delete_message",
    "deliver",
    "edit_message",
    "embed_article",
    "entries_about_hidden_conversations",
    "forward_message",
    "improve_draft",
    "inbox_settings",
    "labels_of",
    "list_articles",
    "list_canned_responses",
    "list_conversations",
    "mark_read",
    "message_arrived",
    "message_out",
    "message_with_media",
    "move_conversations",
    "publish_who_wrote",
    "push_conversation",
    "push_to_audience",
    "record_campaign_messages",
    "refuse_disconnected",
    "reply",
    "requeue_stalled",
    "retry_delay",
    "save_article",
    "save_canned_response",
    "search_articles",
    "search_messages",
    "send_read_receipts",
    "send_ticket_reply",
    "set_labels",
    "settle_reply",
    "store_inbound",
    "suggest_reply",
    "summarize",
    "translate_text",
    "update_assistant_settings",
    "update_conversation",
    "update_inbox_settings",
    "visible_conversations",
    "wake_snoozed",
]
