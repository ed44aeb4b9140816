"""Campaign tests get a counting receiver as their `receiver`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers.campaigns import CountingReceiver, serve_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[CountingReceiver]:
    box = CountingReceiver()
    runner = await serve_receiver(box)
    yield box
    await runner.cleanup()
