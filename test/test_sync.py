"""ApproximateTimeSync: the cases of the ROS ApproximateTime policy tests (by their documented
guarantees), partial sets, time jumps, drop accounting, and property tests on random streams."""
import itertools

import numpy as np
import pytest

from kp3d_core.sync import DROP_REASONS, ApproximateTimeSync

MS = 1_000_000


def feed(sync, events):
    """events: (name, stamp_ns) in arrival order; item = (name, stamp). Returns sets incl. flush."""
    out = []
    for name, stamp in events:
        out += sync.add(name, stamp, (name, stamp))
    return out


def stamps_of(sets):
    return [tuple(sorted(s.stamps.items())) for s in sets]


def check_accounting(sync, sets, n_in):
    used = [it for s in sets for it in s.items.values()]
    assert len(used) == len(set(used)), "a message was used twice"
    assert len(used) + sync.dropped == n_in == sync.received
    assert sync.queued == 0


# ------------------------------------------------------------------------ ROS test-suite cases
def test_exact_match():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=0)
    sets = []
    for t in range(5):
        assert sync.add("a", t * 10, t) == []
        got = sync.add("b", t * 10, -t)
        assert len(got) == 1 and got[0].items == {"a": t, "b": -t}
        assert got[0].stamp_ns == t * 10 and got[0].span_ns == 0 and not got[0].partial
        sets += got
    assert sync.flush() == [] and sync.dropped == 0 and sync.sets_emitted == 5


def test_perfect_interleaving_within_and_outside_slop():
    events = [e for t in range(6) for e in (("a", t * 10), ("b", t * 10 + 5))]
    sync = ApproximateTimeSync(["a", "b"], slop_ns=5)
    sets = feed(sync, events) + sync.flush()
    assert stamps_of(sets) == [(("a", t * 10), ("b", t * 10 + 5)) for t in range(6)]
    assert [s.stamp_ns for s in sets] == [t * 10 + 5 for t in range(6)]  # stamp = newest member
    # one ns less slop: nothing can pair, everything is 'no_match'
    sync = ApproximateTimeSync(["a", "b"], slop_ns=4)
    sets = feed(sync, events) + sync.flush()
    assert sets == [] and sync.counters["no_match"] == 12
    check_accounting(sync, sets, 12)


@pytest.mark.parametrize("fast_first", [True, False])
def test_one_topic_at_half_rate(fast_first):
    events = []
    for t in range(0, 100, 10):
        pair = [("a", t)] + ([("b", t)] if t % 20 == 0 else [])
        events += pair if fast_first else pair[::-1]
    sync = ApproximateTimeSync(["a", "b"], slop_ns=2)
    sets = feed(sync, events) + sync.flush()
    assert stamps_of(sets) == [(("a", t), ("b", t)) for t in range(0, 100, 20)]
    assert sync.dropped == 5  # the a messages between b's
    assert sync.counters["superseded"] + sync.counters["no_match"] == 5
    check_accounting(sync, sets, len(events))


def test_jitter_within_slop_pairs_every_frame():
    rng = np.random.default_rng(1)
    names = ["c0", "c1", "c2"]
    events = []
    for t in range(100):
        frame = [(n, t * 33 * MS + int(rng.integers(-2 * MS, 2 * MS))) for n in names]
        rng.shuffle(frame)
        events += [tuple(e) for e in frame]
    events = [(str(n), int(s)) for n, s in events]
    sync = ApproximateTimeSync(names, slop_ns=4 * MS)
    sets = feed(sync, events) + sync.flush()
    assert len(sets) == 100 and sync.dropped == 0
    for t, s in enumerate(sets):
        assert all(abs(v - t * 33 * MS) <= 2 * MS for v in s.stamps.values())
        assert s.span_ns <= 4 * MS


def test_messages_out_of_slop_are_dropped():
    events = [e for t in range(10) for e in (("a", t * 33 * MS), ("b", t * 33 * MS + 8 * MS))]
    sync = ApproximateTimeSync(["a", "b"], slop_ns=5 * MS)
    sets = feed(sync, events) + sync.flush()
    assert sets == [] and sync.counters == {**dict.fromkeys(DROP_REASONS, 0), "no_match": 20}
    assert sync.drops_by_camera == {"a": 10, "b": 10}


def test_late_message():
    # b lags two frames behind a in arrival, still inside the queue: every frame pairs
    sync = ApproximateTimeSync(["a", "b"], slop_ns=1 * MS)
    events = [("a", 0), ("a", 33 * MS), ("b", 0), ("a", 66 * MS), ("b", 33 * MS), ("b", 66 * MS)]
    sets = feed(sync, events)
    assert stamps_of(sets) == [(("a", t), ("b", t)) for t in (0, 33 * MS, 66 * MS)]
    # a message older than its camera's last one comes too late: counted, never used
    assert sync.add("b", 50 * MS, "late") == [] and sync.counters["out_of_order"] == 1
    assert sync.add("b", 66 * MS, "dup") == [] and sync.counters["out_of_order"] == 2


def test_queue_overflow():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=0, queue_size=3)
    for t in range(5):
        assert sync.add("a", t, t) == []
    assert sync.counters["queue_overflow"] == 2 and sync.queued == 3  # a0, a1 pushed out
    (s,) = sync.add("b", 4, "b4")
    assert s.items == {"a": 4, "b": "b4"}
    assert sync.counters["no_match"] == 2  # a2, a3: b moved past them
    check_accounting(sync, [s], 6)


def test_more_than_two_topics_and_minimal_span():
    names = ["a", "b", "c", "d"]
    sync = ApproximateTimeSync(names, slop_ns=10)
    for n, t in [("a", 0), ("b", 1), ("c", 2), ("a", 5), ("b", 6), ("c", 7)]:
        assert sync.add(n, t, (n, t)) == []
    (s,) = sync.add("d", 8, ("d", 8))
    # complete sets {a0,b1,c2,d8} (span 8) and {a5,b6,c7,d8} (span 3): the smaller span wins
    assert s.stamps == {"a": 5, "b": 6, "c": 7, "d": 8} and s.span_ns == 3
    assert sync.counters["superseded"] == 3


def test_best_window_matches_brute_force():
    """The sweep's smallest complete window equals the brute-force minimum over all combinations."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 5))
        sync = ApproximateTimeSync([f"c{i}" for i in range(n)], slop_ns=0, queue_size=50)
        queues = [sorted(set(rng.integers(0, 60, size=int(rng.integers(1, 5))).tolist())) for _ in range(n)]
        for k, q in enumerate(queues):
            sync._queues[k].extend((s, None) for s in q)
        span, chosen = sync._best_complete_window()
        brute = min(max(c) - min(c) for c in itertools.product(*queues))
        picked = [queues[k][i] for k, i in enumerate(chosen)]
        assert span == brute and max(picked) - min(picked) == brute


# ------------------------------------------------------------------------------- partial sets
def test_camera_dropping_one_frame_gives_a_partial_set():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=1 * MS, min_cameras=2)
    events = [(n, t * 33 * MS) for t in range(4) for n in "abc" if not (t == 1 and n == "c")]
    sets = feed(sync, events)
    assert [s.missing for s in sets] == [(), ("c",), (), ()]
    assert sets[1].stamps == {"a": 33 * MS, "b": 33 * MS}
    assert sync.partial_sets == 1 and sync.dropped == 0


def test_camera_that_stops_is_declared_dead():
    period = 33 * MS
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=1 * MS, min_cameras=2, queue_size=30, timeout_ns=200 * MS)
    sets = []
    for t in range(30):
        for n in "abc":
            if n == "c" and t >= 10:
                continue  # c stops after frame 9
            sets += sync.add(n, t * period, (n, t))
    assert sync.alive() == {"a": True, "b": True, "c": False}
    assert sync.last_seen["c"] == 9 * period
    assert len(sets) == 30 and [s.missing for s in sets[10:]] == [("c",)] * 20
    # while c was still within the timeout its sets waited; none was lost
    assert sync.dropped == 0


def test_camera_dying_at_30fps_with_the_defaults_loses_no_set_of_the_live_cameras():
    """The default queue (30) outlasts the default dead-camera timeout (0.5 s = 15 frames at 30 fps): while
    the dead camera is still waited for, the live cameras' messages wait in their queues instead of
    overflowing; every later frame becomes a partial set. A queue of 10 (the old default) loses frames."""
    period = 33_333_333

    def run(**kw):
        sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=10 * MS, min_cameras=2, **kw)
        sets = []
        for t in range(90):
            for n in "abc":
                if not (n == "c" and t >= 30):
                    sets += sync.add(n, t * period, (n, t))
        return sync, sets

    sync, sets = run()
    assert sync.queue_size == 30 and sync.timeout_ns == 500 * MS
    assert sync.counters["queue_overflow"] == 0 and sync.dropped == 0
    assert len(sets) == 90 and [s.missing for s in sets[30:]] == [("c",)] * 60  # c is dead: nothing waits for it
    old, old_sets = run(queue_size=10)
    assert old.counters["queue_overflow"] > 0 and len(old_sets) < 90


def test_poll_releases_sets_waiting_for_a_silent_camera():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=0, min_cameras=2, timeout_ns=100)
    sync.add("a", 1000, "a")
    assert sync.add("b", 1000, "b") == []  # c may still come
    (s,) = sync.poll(1200)
    assert s.missing == ("c",) and s.items == {"a": "a", "b": "b"}


def test_min_cameras_not_reachable_is_no_match():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=0, min_cameras=3)
    sets = feed(sync, [("a", 0), ("b", 0), ("c", 5), ("a", 5), ("b", 5)])
    assert stamps_of(sets) == [(("a", 5), ("b", 5), ("c", 5))]
    assert sync.counters["no_match"] == 2  # a0, b0: c moved past them


# -------------------------------------------------------------------------------- time jumps
def test_time_jump_back_resets_and_continues():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=0)
    bag = [(n, 10**9 + t * 33 * MS) for t in range(40) for n in "ab"]
    sets = [s for i, (n, t) in enumerate(bag) for s in sync.add(n, t, ("loop1", i))]
    sync.add("a", 10**9 + 40 * 33 * MS, "pending")  # queued when the loop restarts
    # the bag loops: stamps jump back ~1.3 s
    sets2 = [s for i, (n, t) in enumerate(bag) for s in sync.add(n, t, ("loop2", i))]
    assert len(sets) == len(sets2) == 40
    assert sync.resets == 1 and sync.counters["time_jump_back"] == 1
    check_accounting(sync, sets + sets2, 161)


def test_clock_reset_on_one_camera_first():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=0, jump_back_ns=500 * MS)
    feed(sync, [("a", 5 * 10**9), ("b", 5 * 10**9)])
    assert feed(sync, [("b", 0)]) == [] and sync.resets == 1  # b jumped back 5 s: reset
    (s,) = feed(sync, [("a", 0)])
    assert s.stamps == {"a": 0, "b": 0}


# ------------------------------------------------------------------------------- bad input
def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown camera 'x'"):
        ApproximateTimeSync(["a"], 0).add("x", 0, None)
    with pytest.raises(ValueError, match="min_cameras"):
        ApproximateTimeSync(["a", "b"], 0, min_cameras=3)
    with pytest.raises(ValueError, match="slop_ns"):
        ApproximateTimeSync(["a"], -1)
    with pytest.raises(ValueError, match="distinct"):
        ApproximateTimeSync(["a", "a"], 0)
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSync(["a"], 0, queue_size=0)
    with pytest.raises(ValueError, match="at least one"):
        ApproximateTimeSync([], 0)


# --------------------------------------------------------------------------- property tests
def random_stream(rng, names):
    """Per-camera streams with jitter, offsets, dropped frames, stalls and cross-camera arrival delays."""
    period = int(rng.integers(20, 40)) * MS
    events = []
    for k, n in enumerate(names):
        offset = int(rng.integers(0, 8)) * MS
        stop = int(rng.integers(20, 60)) if rng.random() < 0.3 else 60
        for t in range(stop):
            if rng.random() < 0.1:
                continue  # dropped frame
            stamp = t * period + offset + int(rng.integers(-3 * MS, 3 * MS))
            arrival = stamp + int(rng.exponential(10 * MS)) + k  # transport delay
            events.append((arrival, n, stamp))
    events.sort()
    out = [(n, s) for _, n, s in events]
    if rng.random() < 0.3:  # an occasional out-of-order duplicate
        i = int(rng.integers(1, len(out)))
        out.insert(i, out[i - 1])
    if rng.random() < 0.2:  # a bag loop
        out += out[: len(out) // 2]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_properties_on_random_streams(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    names = [f"cam{i}" for i in range(n)]
    slop = int(rng.integers(0, 12)) * MS
    min_cams = int(rng.integers(1, n + 1))
    sync = ApproximateTimeSync(names, slop, min_cameras=min_cams, queue_size=int(rng.integers(1, 8)),
                               timeout_ns=int(rng.integers(50, 300)) * MS)
    events = random_stream(rng, names)
    sets, epochs = [], []  # epoch: number of resets before the set (non-crossing holds per epoch)
    for i, (name, stamp) in enumerate(events):
        got = sync.add(name, stamp, (i, name, stamp))
        sets += got
        epochs += [sync.resets] * len(got)
        assert sync.queued <= n * sync.queue_size
    final = sync.flush()
    sets += final
    epochs += [sync.resets] * len(final)

    used = [it for s in sets for it in s.items.values()]
    assert len(used) == len(set(used)), "used at most once"
    assert len(used) + sync.dropped == len(events) == sync.received, "every message in one set or one drop"
    assert sync.queued == 0
    assert sum(sync.drops_by_camera.values()) == sync.dropped
    last, epoch = {}, 0
    for s, e in zip(sets, epochs):
        if e != epoch:
            last, epoch = {}, e  # a time jump reset the queues
        assert s.span_ns <= slop
        assert len(s.items) >= min_cams and set(s.items) | set(s.missing) == set(names)
        assert s.stamp_ns == max(s.stamps.values())
        assert all(s.items[c][2] == s.stamps[c] and s.items[c][1] == c for c in s.items)
        for c, st in s.stamps.items():
            assert st > last.get(c, -(10**18)), "sets do not cross"
            last[c] = st

    # deterministic: the same input gives the same output
    again = ApproximateTimeSync(names, slop, min_cameras=min_cams, queue_size=sync.queue_size,
                                timeout_ns=sync.timeout_ns)
    sets2 = [s for i, (name, stamp) in enumerate(events) for s in again.add(name, stamp, (i, name, stamp))]
    sets2 += again.flush()
    assert sets2 == sets and again.counters == sync.counters


def test_camera_with_offset_clock_does_not_reset_everyone():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=1 * MS, min_cameras=2)
    events = [(n, t * 33 * MS + (-2 * 10**9 if n == "c" else 0) + 3 * 10**9) for t in range(30) for n in "abc"]
    sets = feed(sync, events) + sync.flush()
    assert sync.resets == 0 and sync.counters["time_jump_back"] == 0
    assert len(sets) == 30 and all(s.missing == ("c",) for s in sets)  # c never fits: a+b sets go on
    assert sync.counters["no_match"] == 30 and sync.alive() == {"a": True, "b": True, "c": False}
