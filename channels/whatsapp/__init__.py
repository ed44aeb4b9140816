"""WhatsApp through neonize: one client per profile, its events translated to the channel contract."""

import logging

# neonize calls logging.basicConfig when imported; the hub's own log set-up must stay as it was.
_root = logging.getLogger()
_handlers, _level = list(_root.handlers), _root.level
import neonize  # noqa: E402, F401

_root.handlers[:] = _handlers
_root.setLevel(_level)
