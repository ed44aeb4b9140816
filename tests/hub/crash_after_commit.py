"""Publishes one event and dies right after the commit, before the event is handed to a task.

Run as a separate process by test_events.py: `python -m tests.hub.crash_after_commit ORG_ID NOTE`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import tests.hub.recorders as recorders
from hub import events
from hub.config import Settings
from hub.runtime import Runtime, activate


async def main(organization_id: uuid.UUID, note: str) -> None:
    runtime = Runtime.build(Settings.from_env(read_dotenv=False))
    activate(runtime)
    async with runtime.db.session(organization_id) as session:

        async def die() -> None:
            os._exit(17)  # the process is gone: no hand-off, no clean shutdown

        session.after_commit(die)  # runs before the hand-off that publish() registers next
        await events.publish(session, recorders.Pinged(organization_id=organization_id, note=note))
        await session.commit()


if __name__ == "__main__":
    asyncio.run(main(uuid.UUID(sys.argv[1]), sys.argv[2]))
