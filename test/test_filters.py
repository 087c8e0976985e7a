"""One Euro filter (against a scalar reference of the paper's equations) and the LatestSlot mailbox."""
import gc
import math
import threading
import time
import weakref

import numpy as np
import pytest

from kp3d_core.filters import OneEuroFilter, smoothing_factor
from kp3d_core.mailbox import FifoQueue, LatestSlot


# ------------------------------------------------------------------------------ One Euro filter
class ScalarOneEuro:
    """Plain-Python scalar One Euro filter written from Casiez et al. 2012 (the test's reference)."""

    def __init__(self, min_cutoff, beta, d_cutoff):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = self.t = None

    @staticmethod
    def alpha(dt, fc):
        tau = 1.0 / (2 * math.pi * fc)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x, t):
        if self.x is None:
            self.x, self.dx, self.t = x, 0.0, t
            return x
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + self.alpha(dt, self.d_cutoff) * (dx - self.dx)
        fc = self.min_cutoff + self.beta * abs(self.dx)
        self.x = self.x + self.alpha(dt, fc) * (x - self.x)
        self.t = t
        return self.x


def test_smoothing_factor():
    # tau = 1/(2 pi): alpha = 1/(1 + tau/dt) with dt = 1/(2 pi) -> 0.5
    assert smoothing_factor(1 / (2 * math.pi), 1.0) == pytest.approx(0.5)
    assert smoothing_factor(0.01, 1e9) == pytest.approx(1.0, abs=1e-6)


def test_matches_scalar_reference_per_coordinate():
    rng = np.random.default_rng(0)
    K = 5
    f = OneEuroFilter(min_cutoff=0.8, beta=0.3, d_cutoff=1.2)
    refs = [[ScalarOneEuro(0.8, 0.3, 1.2) for _ in range(3)] for _ in range(K)]
    t = 10.0
    x = rng.normal(size=(K, 3))
    for _ in range(50):
        t += rng.uniform(0.02, 0.05)  # irregular sampling
        x = x + rng.normal(scale=0.05, size=(K, 3))
        out = f(x, t)
        want = np.array([[refs[k][d](x[k, d], t) for d in range(3)] for k in range(K)])
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_first_sample_and_constant_pass_through():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(x, 0.0), x)
    for i in range(1, 10):
        np.testing.assert_allclose(f(x, i / 30), x)


def test_reduces_jitter_and_beta_reduces_lag():
    rng = np.random.default_rng(1)
    t = np.arange(300) / 30.0
    still = 1.0 + rng.normal(scale=0.01, size=(300, 1, 3))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.stack([f(still[i], t[i]) for i in range(300)])
    assert out[30:].std() < 0.4 * still[30:].std()

    ramp = (2.0 * t)[:, None, None] * np.ones((1, 1, 3))  # 2 m/s
    lags = {}
    for beta in (0.0, 1.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        out = np.stack([f(ramp[i], t[i]) for i in range(300)])
        lags[beta] = float(np.abs(out[-1] - ramp[-1]).max())
    assert lags[1.0] < 0.25 * lags[0.0]
    # steady-state lag of the discrete first-order low-pass on a ramp: speed * dt (1 - a) / a = speed * tau
    tau = 1 / (2 * math.pi * 1.0)
    assert lags[0.0] == pytest.approx(2.0 * tau, rel=1e-3)


def test_nan_point_resets_only_that_point():
    f = OneEuroFilter(min_cutoff=0.5, beta=0.0)
    a = np.zeros((2, 3))
    f(a, 0.0)
    b = np.ones((2, 3))
    out = f(b, 0.1)
    assert np.all((out > 0) & (out < 1))  # smoothed
    c = np.ones((2, 3))
    c[1, 2] = np.nan  # one coordinate missing: the whole point is missing
    out = f(c, 0.2)
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()
    d = np.full((2, 3), 5.0)
    out = f(d, 0.3)
    np.testing.assert_array_equal(out[1], d[1])  # restarted unfiltered
    assert np.all(out[0] < 5.0)
    assert not np.isnan(c[0]).any() and c[1, 0] == 1.0  # input untouched


def test_time_going_back_or_shape_change_resets():
    f = OneEuroFilter(min_cutoff=0.5)
    f(np.zeros((1, 3)), 1.0)
    x = np.ones((1, 3))
    np.testing.assert_array_equal(f(x, 0.5), x)  # time went back: pass through
    np.testing.assert_array_equal(f(np.full((4, 3), 2.0), 0.6), np.full((4, 3), 2.0))


def test_bad_parameters():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroFilter(beta=-1)
    with pytest.raises(ValueError, match="d_cutoff"):
        OneEuroFilter(d_cutoff=0)
    with pytest.raises(ValueError, match="timestamp"):
        OneEuroFilter()(np.zeros(3), float("nan"))


# ------------------------------------------------------------------------------------- mailbox
def test_latest_slot_replaces_and_counts():
    slot = LatestSlot()
    assert slot.get(timeout=0) is None
    assert slot.put("a") is False
    assert slot.put("b") is True
    assert slot.get(timeout=0) == "b" and slot.get(timeout=0) is None
    assert (slot.put_count, slot.taken, slot.dropped) == (2, 1, 1)
    assert slot.counters == {"superseded_by_newer": 1}
    with pytest.raises(ValueError, match="None"):
        slot.put(None)


def test_latest_slot_timeout_and_close():
    slot = LatestSlot()
    t0 = time.monotonic()
    assert slot.get(timeout=0.05) is None
    assert time.monotonic() - t0 >= 0.045
    got = []
    th = threading.Thread(target=lambda: got.append(slot.get()))
    th.start()
    slot.close()
    th.join(timeout=2)
    assert not th.is_alive() and got == [None]


def test_latest_slot_memory_is_one_item():
    class Big:
        pass

    slot = LatestSlot()
    refs = []
    for _ in range(100):
        item = Big()
        refs.append(weakref.ref(item))
        slot.put(item)
        del item
    gc.collect()
    assert sum(r() is not None for r in refs) == 1 and refs[-1]() is not None
    slot.get(timeout=0)
    gc.collect()
    assert refs[-1]() is None


def test_latest_slot_threads_fast_producer_slow_consumer():
    slot = LatestSlot()
    taken = []
    done = threading.Event()

    def consume():
        while True:
            item = slot.get(timeout=0.01)
            if item is None:
                if done.is_set() and not slot.pending:
                    return
                continue
            taken.append(item)
            time.sleep(0.0005)  # slower than the producer

    th = threading.Thread(target=consume)
    th.start()
    n = 5000
    for i in range(1, n + 1):
        slot.put(i)
    done.set()
    th.join(timeout=10)
    assert not th.is_alive()
    assert taken == sorted(taken) and len(set(taken)) == len(taken)  # newest first, never twice
    assert taken[-1] == n  # the last item is never lost
    assert slot.taken + slot.dropped == slot.put_count == n
    assert slot.dropped > 0


def test_fifo_queue_keeps_order_and_drops_the_oldest_when_full():
    q = FifoQueue(3)
    assert q.get(timeout=0) is None
    assert [q.put(i) for i in range(5)] == [False, False, False, True, True]
    assert q.pending == 3 and q.counters == {"overflow": 2}
    assert [q.get(timeout=0) for _ in range(4)] == [2, 3, 4, None]
    assert (q.put_count, q.taken, q.dropped) == (5, 3, 2)
    with pytest.raises(ValueError, match="capacity"):
        FifoQueue(0)
    with pytest.raises(ValueError, match="None"):
        q.put(None)


def test_fifo_queue_threads_every_item_in_order():
    q = FifoQueue(10_000)
    taken = []

    def consume():
        while (item := q.get(timeout=2)) is not None:
            taken.append(item)
            if item == 2000:
                return

    th = threading.Thread(target=consume)
    th.start()
    for i in range(1, 2001):
        q.put(i)
    th.join(timeout=10)
    q.close()
    assert not th.is_alive() and taken == list(range(1, 2001)) and q.dropped == 0
