"""localstripe, started the way the billing tests use it, with the one piece of Stripe's
behaviour it lacks and the hub relies on: a subscription made with a trial is `trialing` until
the trial ends, with its `trial_start` and `trial_end` (localstripe leaves it `incomplete`).
Run as `python -m tests.helpers.stripe_server --port N --from-scratch`."""

from __future__ import annotations

import time
from typing import Any

from localstripe import resources, server

_made = resources.Subscription.__init__


def _with_trial(self: Any, *args: Any, **kwargs: Any) -> None:
    _made(self, *args, **kwargs)
    days = self.trial_period_days
    if self.trial_end is not None or days is not None:
        now = int(time.time())
        self.trial_start = now
        self.trial_end = self.trial_end or now + int(days) * 86400
        self.status = "trialing"


resources.Subscription.__init__ = _with_trial  # type: ignore[method-assign]

if __name__ == "__main__":
    server.start()
