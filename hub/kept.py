"""What a process keeps for a few seconds instead of reading it on every message: settings asked
for on the inbound path. Each process keeps its own copy; the process that changes a setting
forgets its copy at once, the others within the seconds the copy is kept."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class Kept(Generic[K, V]):
    """A bounded map whose entries expire `seconds` after they were put."""

    def __init__(self, seconds: float, most: int = 10_000) -> None:
        self.seconds = seconds
        self.most = most
        self._entries: dict[K, tuple[float, V]] = {}

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return default
        return entry[1]

    def put(self, key: K, value: V) -> V:
        if len(self._entries) >= self.most and key not in self._entries:
            self._entries.clear()  # many keys at once: start again rather than grow
        self._entries[key] = (time.monotonic() + self.seconds, value)
        return value

    def change(self, key: K, value: V) -> None:
        """Replace a kept value without making it live longer (this process just changed it)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
