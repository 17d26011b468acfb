"""A few seconds' memory, per container, of the items every cascade would otherwise read.

Three items are read by nearly every cascade: the scenario index (``SCENARIOS`` / ``INDEX``, once
per event), the CRM webhook's registration (``WEBHOOK`` / ``CONFIG``, once per stream batch of the
outbound function) and a channel's circuit (``CIRCUIT#<channel>`` / ``CIRCUIT``, once per step).
Read from DynamoDB every time, one key takes every cascade's read: past 3,000 reads a second it
is a hot partition. So the store keeps each for ``CONFIG_CACHE_SECONDS`` (5 s by default, 0
turns this off) in the container that read it: a busy container reads each key once per 5 s,
whatever its traffic.

When a change is seen:

- **In the container that made it, at once.** Every write of one of these items through
  :class:`cascade.store.CascadeStore` (saving or deleting a scenario, registering or removing the
  webhook, a circuit counting a failure, opening, closing or taking its trial) forgets the item
  here before it returns, so the API's next answer and the next event in that container read it
  fresh. A read that began before the write cannot put its older answer back (``forget`` bumps a
  generation the read is checked against).
- **In other containers, within the TTL.** Nothing tells them: a scenario saved through the API
  starts routing the events another container takes at most 5 s later; a circuit that opened
  elsewhere lets a few more steps try the failing provider (each failure is still counted, and
  the step fails over as before); a circuit closed elsewhere keeps skipping the channel for up to
  5 s. A version check on every read would be a read of one key per cascade again: the very hot
  key this avoids.
- **On the local stack** the ``cascade`` package is one per process (see
  :mod:`cascade.local.lambdas`): every function's environments share this memory, so a change is
  seen everywhere at once, as a test that saves and then uses expects.

Values are handed out as copies: a caller that edits what it got cannot change what the next
caller gets."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class HotCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[Any, tuple[float, Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Any, ttl: float, load: Callable[[], T]) -> T:
        """The value under ``key`` if read less than ``ttl`` seconds ago, else ``load()`` (kept)."""
        if ttl <= 0:
            return load()
        with self._lock:
            now, generation = self._clock(), self._generation
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return copy.deepcopy(hit[1])
        value = load()
        with self._lock:
            if self._generation == generation:  # nothing was forgotten while it loaded
                self._items[key] = (now + ttl, copy.deepcopy(value))
        return value

    def forget(self, key: Any) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._generation += 1


# One per process: on Lambda, one per container.
HOT = HotCache()

__all__ = ["HOT", "HotCache"]
