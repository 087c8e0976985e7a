"""Thread-safe mailboxes between a producer that never blocks and a slower consumer (the pipeline worker).

Two policies, one interface (``put``, ``get(timeout)``, ``close``, ``counters`` of drops by reason):

* :class:`LatestSlot` holds one item: ``put`` replaces an item nobody has taken yet and counts it as
  dropped ('superseded_by_newer'); the consumer always gets the newest item. Right for live cameras:
  the output follows the present, whatever the consumer's speed.
* :class:`FifoQueue` keeps up to ``capacity`` items in order; the consumer gets every one, oldest
  first; when full, the oldest is dropped ('overflow'). Right for a recording replayed reliably: every
  set is processed, so the output does not depend on the consumer's speed.

Example::

    slot = LatestSlot()
    slot.put(set_a); slot.put(set_b)     # set_a dropped, slot.dropped == 1
    slot.get(timeout=0.1)                # -> set_b; None after the timeout if empty
"""
from __future__ import annotations

import collections
import threading
import time


class _Mailbox:
    """The shared waiting logic; subclasses say how an item is stored and which item is taken."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.put_count = 0
        self.taken = 0
        self.dropped = 0

    def _has_item(self) -> bool:
        raise NotImplementedError

    def _store(self, item) -> bool:
        """Store under the lock; True if an item was dropped for it."""
        raise NotImplementedError

    def _take(self):
        raise NotImplementedError

    def put(self, item) -> bool:
        """Store ``item`` (not None); return True if an item that was never taken was dropped for it."""
        if item is None:
            raise ValueError(f"{type(self).__name__}.put: item must not be None (None means 'nothing' to get)")
        with self._cond:
            dropped = self._store(item)
            self.put_count += 1
            self.dropped += dropped
            self._cond.notify()
        return dropped

    def get(self, timeout: float | None = None):
        """Take the next item, waiting up to ``timeout`` seconds (None: forever, 0: don't wait).

        Returns None on timeout or once :meth:`close` was called and the mailbox is empty.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._has_item():
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self.taken += 1
            return self._take()

    def close(self) -> None:
        """Wake every waiting :meth:`get` (they return None when the mailbox is empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Items waiting to be taken."""
        raise NotImplementedError


class LatestSlot(_Mailbox):
    """Holds at most one item; see the module docstring.

    Attributes:
        put_count: items put.
        taken: items returned by :meth:`get`.
        dropped: items replaced before being taken (``put_count == taken + dropped + pending``).
    """

    def __init__(self) -> None:
        super().__init__()
        self._item = None
        self._full = False

    @property
    def counters(self) -> dict[str, int]:
        """Drops by reason."""
        return {"superseded_by_newer": self.dropped}

    @property
    def pending(self) -> int:
        return int(self._full)

    def _has_item(self) -> bool:
        return self._full

    def _store(self, item) -> bool:
        replaced = self._full
        self._item, self._full = item, True
        return replaced

    def _take(self):
        item, self._item, self._full = self._item, None, False  # release the reference at once
        return item


class FifoQueue(_Mailbox):
    """Up to ``capacity`` items, taken oldest first; see the module docstring.

    Attributes: as :class:`LatestSlot` (``dropped``: the oldest items pushed out of a full queue).
    """

    def __init__(self, capacity: int) -> None:
        if int(capacity) < 1:
            raise ValueError(f"FifoQueue: capacity must be >= 1, got {capacity}")
        super().__init__()
        self.capacity = int(capacity)
        self._items: collections.deque = collections.deque()

    @property
    def counters(self) -> dict[str, int]:
        """Drops by reason."""
        return {"overflow": self.dropped}

    @property
    def pending(self) -> int:
        return len(self._items)

    def _has_item(self) -> bool:
        return bool(self._items)

    def _store(self, item) -> bool:
        self._items.append(item)
        if len(self._items) > self.capacity:
            self._items.popleft()
            return True
        return False

    def _take(self):
        return self._items.popleft()
