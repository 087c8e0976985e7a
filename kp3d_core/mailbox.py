"""A single-slot, thread-safe "latest value" mailbox between a producer and a slower consumer.

The producer never blocks and memory is bounded by construction (one item): ``put`` replaces an
item nobody has taken yet and counts it as dropped ('superseded_by_newer'). The consumer always gets
the newest item. Used between the synchroniser callbacks and the inference worker of the ROS node.

Example::

    slot = LatestSlot()
    slot.put(set_a); slot.put(set_b)     # set_a dropped, slot.dropped == 1
    slot.get(timeout=0.1)                # -> set_b; None after the timeout if empty
"""
from __future__ import annotations

import threading
import time


class LatestSlot:
    """Holds at most one item; see the module docstring.

    Attributes:
        put_count: items put.
        taken: items returned by :meth:`get`.
        dropped: items replaced before being taken (``put_count == taken + dropped + pending``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item = None
        self._full = False
        self._closed = False
        self.put_count = 0
        self.taken = 0
        self.dropped = 0

    @property
    def counters(self) -> dict[str, int]:
        """Drops by reason."""
        return {"superseded_by_newer": self.dropped}

    @property
    def pending(self) -> bool:
        """Whether an item waits to be taken."""
        return self._full

    def put(self, item) -> bool:
        """Store ``item`` (not None); return True if it replaced an item that was never taken."""
        if item is None:
            raise ValueError("LatestSlot.put: item must not be None (None means 'nothing' to get)")
        with self._cond:
            replaced = self._full
            self._item, self._full = item, True
            self.put_count += 1
            self.dropped += replaced
            self._cond.notify()
        return replaced

    def get(self, timeout: float | None = None):
        """Take the newest item, waiting up to ``timeout`` seconds (None: forever, 0: don't wait).

        Returns None on timeout or once :meth:`close` was called and the slot is empty.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._full:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item, self._item, self._full = self._item, None, False  # release the reference at once
            self.taken += 1
            return item

    def close(self) -> None:
        """Wake every waiting :meth:`get` (they return None when the slot is empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
