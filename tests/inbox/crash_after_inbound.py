"""Stores one inbound message through the inbox and dies the moment it is committed, before the
work that follows it in the process runs: what a process killed right after acknowledging a
message leaves behind.

Run as a separate process by test_follow_up.py:
`python -m tests.inbox.crash_after_inbound ORG_ID CHANNEL_ID SENDER EXTERNAL_ID TEXT`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from hub import events
from inbox.events import MessageReceived


@events.hints(MessageReceived)  # registered before the packages' own, so it runs before them
async def die(_event: MessageReceived) -> None:
    os._exit(17)  # no hint after this one, no hand-off, no clean shutdown


async def main(organization_id: str, channel_id: str, sender: str, external_id: str, text: str) -> None:
    from channels.adapters import InboundMessage
    from hub.app import load_handlers_and_tasks
    from hub.config import Settings
    from hub.runtime import Runtime, activate
    from inbox.services import store_inbound

    load_handlers_and_tasks()
    runtime = Runtime.build(Settings.from_env(read_dotenv=False))
    activate(runtime)
    await store_inbound(
        runtime,
        InboundMessage(
            organization_id=uuid.UUID(organization_id),
            channel_id=uuid.UUID(channel_id),
            external_id=external_id,
            sender=sender,
            sender_is_phone=True,
            text=text,
        ),
    )
    await asyncio.sleep(10)  # the hints run in this time, unless the process is gone
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
