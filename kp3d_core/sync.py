"""Approximate-time synchronisation of N camera streams by stamp (ROS-free, deterministic).

Guarantees (those of the ROS C++ ``ApproximateTime`` policy, plus partial sets and drop counts):

- every message is used in at most one set;
- sets do not cross: per camera, each set's message is newer than that camera's message in any
  earlier set;
- a set's span (newest - oldest member stamp) is at most ``slop_ns``, and minimal among the
  complete sets that the queued messages allow when it is emitted;
- a partial set (at least ``min_cameras`` cameras) is emitted only when none of the missing cameras
  can still complete it: each either has already sent a newer message past the set's slop window,
  or is silent for longer than ``timeout_ns`` (dead);
- every message given to :meth:`ApproximateTimeSync.add` ends in exactly one emitted set or in
  exactly one drop counter (after :meth:`~ApproximateTimeSync.flush`), see :data:`DROP_REASONS`.

Algorithm (cost O(M log M) per message, M = queued messages <= N * queue_size; never k^(N-1)):
after each message, take the oldest queued message x (stamp s) as the pivot: the only sets that can
contain it lie in [s, s + slop]. (1) If fewer than ``min_cameras`` cameras have or can still send a
message in that window, drop x ('no_match'). (2) If some cameras lack one and none of them can still
send one, emit the partial set of the queue heads inside the window. (3) Otherwise, if the queues
hold a complete set within the slop, emit the one with the smallest span (a sweep over the merged
stamps: the smallest window covering every camera); else wait. Repeat until waiting.

Unlike the C++ policy, a complete set is emitted as soon as it exists (no waiting for one more
message per camera), which keeps the latency at the arrival of the set's last image; the price is
that output depends on the arrival order as well as on the stamps. Stamps are integer nanoseconds;
each camera's stamps must increase. A stamp more than ``jump_back_ns`` older than the camera's last
one is a time jump (bag loop, clock reset): all queues are reset (queued messages counted as
'time_jump_back'); a smaller step back drops just that message ('out_of_order').

Example::

    sync = ApproximateTimeSync(["cam0", "cam1"], slop_ns=5_000_000)
    for s in sync.add("cam0", t_ns, image):     # list of SyncSet, usually empty or one
        s.items["cam0"], s.stamp_ns
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Why a message was dropped:
#: superseded: older than its camera's message in an emitted set (could only cross it);
#: queue_overflow: pushed out of a full per-camera queue;
#: no_match: no set with at least min_cameras cameras within the slop could include it;
#: out_of_order: not newer than the camera's previous stamp (within jump_back_ns);
#: time_jump_back: queued when a time jump reset the queues.
DROP_REASONS: tuple[str, ...] = ("superseded", "queue_overflow", "no_match", "out_of_order", "time_jump_back")


@dataclass(frozen=True)
class SyncSet:
    """One synchronised set.

    Attributes:
        stamp_ns: the newest member stamp (the set is complete at that time), ns.
        items: camera name -> the item given to ``add``, in the synchroniser's camera order.
        stamps: camera name -> that member's stamp, ns.
        missing: cameras not in the set (empty for a complete set).
    """

    stamp_ns: int
    items: dict
    stamps: dict
    missing: tuple = field(default=())

    @property
    def span_ns(self) -> int:
        """Newest minus oldest member stamp, ns."""
        return max(self.stamps.values()) - min(self.stamps.values())

    @property
    def partial(self) -> bool:
        return bool(self.missing)


class ApproximateTimeSync:
    """Approximate-time synchroniser over stamps.

    Args:
        names: camera names (distinct).
        slop_ns: largest allowed span of a set, ns (>= 0).
        min_cameras: fewest cameras in a set (default: all, i.e. complete sets only).
        queue_size: messages kept per camera; older ones are dropped as 'queue_overflow'. While a camera
            that stopped is still waited for (up to ``timeout_ns`` of stamps), the live cameras' messages
            queue up: the queue must hold more than ``timeout_ns`` of frames, or they overflow. Default
            30: 1 s at 30 fps, twice the default timeout.
        timeout_ns: a camera whose last stamp is older than the newest stamp seen minus this is
            dead (no longer waited for; reported by :meth:`alive`). Default 500 ms.
        jump_back_ns: a stamp this much older than the camera's last one resets the queues.
            Default 1 s.
    """

    def __init__(
        self,
        names,
        slop_ns: int,
        min_cameras: int | None = None,
        queue_size: int = 30,
        timeout_ns: int = 500_000_000,
        jump_back_ns: int = 1_000_000_000,
    ) -> None:
        names = list(names)
        if not names:
            raise ValueError("ApproximateTimeSync: names must list at least one camera")
        if len(set(names)) != len(names):
            raise ValueError(f"ApproximateTimeSync: camera names must be distinct, got {names}")
        if int(slop_ns) < 0:
            raise ValueError(f"ApproximateTimeSync: slop_ns must be >= 0, got {slop_ns}")
        min_cameras = len(names) if min_cameras is None else int(min_cameras)
        if not 1 <= min_cameras <= len(names):
            raise ValueError(f"ApproximateTimeSync: min_cameras must be in 1..{len(names)}, got {min_cameras}")
        if int(queue_size) < 1:
            raise ValueError(f"ApproximateTimeSync: queue_size must be >= 1, got {queue_size}")
        if int(timeout_ns) <= 0 or int(jump_back_ns) <= 0:
            raise ValueError(
                f"ApproximateTimeSync: timeout_ns and jump_back_ns must be > 0, got {timeout_ns}, {jump_back_ns}"
            )
        self.names = names
        self.slop_ns = int(slop_ns)
        self.min_cameras = min_cameras
        self.queue_size = int(queue_size)
        self.timeout_ns = int(timeout_ns)
        self.jump_back_ns = int(jump_back_ns)
        self._index = {n: i for i, n in enumerate(names)}
        self._queues: list[deque] = [deque() for _ in names]  # per camera: (stamp, item), ascending
        self.counters: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.drops_by_camera: dict[str, int] = dict.fromkeys(names, 0)
        self.received = 0
        self.sets_emitted = 0
        self.partial_sets = 0
        self.resets = 0
        self._clear_clock()

    def _clear_clock(self) -> None:
        self.last_seen: dict[str, int | None] = dict.fromkeys(self.names, None)
        self._now: int | None = None  # newest stamp seen (the synchroniser's clock)
        self._start: int | None = None  # first stamp since the last reset

    # ------------------------------------------------------------------------------ public API
    @property
    def dropped(self) -> int:
        """Total dropped messages."""
        return sum(self.counters.values())

    @property
    def drops(self) -> dict[str, int]:
        """Drop counts by reason (the same dict as :attr:`counters`)."""
        return self.counters

    @property
    def queued(self) -> int:
        """Messages currently waiting in the queues."""
        return sum(len(q) for q in self._queues)

    def add(self, name: str, stamp_ns: int, item) -> list[SyncSet]:
        """Queue ``item`` of camera ``name`` stamped ``stamp_ns``; return the sets it completes (oldest first)."""
        if name not in self._index:
            raise ValueError(f"ApproximateTimeSync: unknown camera '{name}' (known: {self.names})")
        k = self._index[name]
        stamp = int(stamp_ns)
        self.received += 1
        last = self.last_seen[name]
        if last is not None and last - stamp > self.jump_back_ns:
            # per camera only: a camera whose clock is merely offset must not reset everyone
            self._reset()
        elif last is not None and stamp <= last:
            self._drop("out_of_order", k)
            return []
        self.last_seen[name] = stamp
        self._now = stamp if self._now is None else max(self._now, stamp)
        if self._start is None:
            self._start = stamp
        q = self._queues[k]
        q.append((stamp, item))
        if len(q) > self.queue_size:
            q.popleft()
            self._drop("queue_overflow", k)
        return self._process(closed=False)

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Advance the clock to ``now_ns`` (stamp time) without a message, so that cameras silent for
        longer than ``timeout_ns`` stop being waited for; return the sets that become possible."""
        if self._now is not None:
            self._now = max(self._now, int(now_ns))
        return self._process(closed=False)

    def flush(self) -> list[SyncSet]:
        """End of stream: emit every set still possible from the queues (partial ones with at least
        ``min_cameras``) and drop the rest as 'no_match'. The queues are empty afterwards."""
        return self._process(closed=True)

    def alive(self, now_ns: int | None = None) -> dict[str, bool]:
        """Camera name -> whether it sent a stamp within ``timeout_ns`` of ``now_ns`` (default: the
        newest stamp seen). Before any message, every camera counts as alive."""
        now = self._now if now_ns is None else int(now_ns)
        return {n: self._alive(self._index[n], now) for n in self.names}

    def stats(self) -> dict:
        """Counters for diagnostics: received, sets, partial sets, resets, queued, drops by reason."""
        return {
            "received": self.received,
            "sets": self.sets_emitted,
            "partial_sets": self.partial_sets,
            "resets": self.resets,
            "queued": self.queued,
            "dropped": dict(self.counters),
            "dropped_by_camera": dict(self.drops_by_camera),
        }

    # ------------------------------------------------------------------------------ internals
    def _drop(self, reason: str, k: int, n: int = 1) -> None:
        self.counters[reason] += n
        self.drops_by_camera[self.names[k]] += n

    def _reset(self) -> None:
        for k, q in enumerate(self._queues):
            if q:
                self._drop("time_jump_back", k, len(q))
                q.clear()
        self.resets += 1
        self._clear_clock()

    def _alive(self, k: int, now: int | None) -> bool:
        if now is None:
            return True
        last = self.last_seen[self.names[k]]
        ref = self._start if last is None else last
        return ref is None or now - ref <= self.timeout_ns

    def _can_deliver(self, k: int, deadline: int, closed: bool) -> bool:
        """Could camera k still send a stamp <= deadline? (its stamps increase; dead cameras don't)."""
        if closed:
            return False
        last = self.last_seen[self.names[k]]
        return (last is None or last < deadline) and self._alive(k, self._now)

    def _best_complete_window(self) -> tuple[int, list[int]] | None:
        """Smallest-span window of queued stamps covering every camera: (span, queue index per camera)."""
        if not all(self._queues):
            return None
        events = sorted((s, k, i) for k, q in enumerate(self._queues) for i, (s, _) in enumerate(q))
        n = len(self._queues)
        count = [0] * n
        covered = 0
        best = None
        left = 0
        for right, (s_r, k_r, _) in enumerate(events):
            count[k_r] += 1
            covered += count[k_r] == 1
            while covered == n:
                s_l, k_l, _ = events[left]
                if best is None or s_r - s_l < best[0]:  # strict: the earliest of equal windows
                    best = (s_r - s_l, left, right)
                count[k_l] -= 1
                covered -= count[k_l] == 0
                left += 1
        span, lo, hi = best
        chosen = [-1] * n
        for _, k, i in events[lo : hi + 1]:  # earliest message of each camera inside the window
            if chosen[k] < 0:
                chosen[k] = i
        return span, chosen

    def _emit(self, chosen: dict[int, int]) -> SyncSet:
        """Pop the chosen message (queue index) of each camera; older ones in its queue are superseded."""
        items, stamps = {}, {}
        for k in sorted(chosen):
            q = self._queues[k]
            for _ in range(chosen[k]):
                q.popleft()
                self._drop("superseded", k)
            stamp, item = q.popleft()
            items[self.names[k]] = item
            stamps[self.names[k]] = stamp
        missing = tuple(n for i, n in enumerate(self.names) if i not in chosen)
        self.sets_emitted += 1
        self.partial_sets += bool(missing)
        return SyncSet(max(stamps.values()), items, stamps, missing)

    def _process(self, closed: bool) -> list[SyncSet]:
        out: list[SyncSet] = []
        while True:
            heads = [(q[0][0], k) for k, q in enumerate(self._queues) if q]
            if not heads:
                return out
            s, j = min(heads)  # pivot: the oldest queued message; its sets lie in [s, s + slop]
            deadline = s + self.slop_ns
            present = [k for h, k in heads if h <= deadline]
            missing = [k for k in range(len(self._queues)) if k not in present]
            pending = [k for k in missing if self._can_deliver(k, deadline, closed)]
            if len(present) + len(pending) < self.min_cameras:
                self._queues[j].popleft()
                self._drop("no_match", j)
                continue
            if missing and not pending:
                # no missing camera can still join: the pivot's partial set, before any newer set
                out.append(self._emit({k: 0 for k in present}))
                continue
            best = self._best_complete_window()
            if best is not None and best[0] <= self.slop_ns:
                out.append(self._emit(dict(enumerate(best[1]))))
                continue
            return out  # a missing camera may still complete the pivot's set: wait
