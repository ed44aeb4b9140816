"""Sending campaigns, one module per part; what callers use is re-exported here.

- `sender`: one sender per channel at a time, each send paced and claimed before it goes out
- `outcomes`: what became of each send, written in batches over the claims they came from
- `sweep`: what no sender is doing: due campaigns, sends left in doubt, idle channels with work
- `receipts`: receipts and replies that move sent recipients on

A campaign's status changes only through `campaigns.lifecycle`.
"""

from __future__ import annotations

from campaigns.sending.outcomes import Outcome, OutcomeWriter, record_outcomes, resolve, writer_of
from campaigns.sending.receipts import customers_replied, follow_receipt
from campaigns.sending.sender import ChannelSender, Claim, text_hash
from campaigns.sending.sweep import settle_in_doubt, sweep

__all__ = [
    "ChannelSender",
    "Claim",
    "Outcome",
    "OutcomeWriter",
    "customers_replied",
    "follow_receipt",
    "record_outcomes",
    "resolve",
    "settle_in_doubt",
    "sweep",
    "text_hash",
    "writer_of",
]
