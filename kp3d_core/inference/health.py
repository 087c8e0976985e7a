"""Health of the run-time pipeline as plain values: counters, latency, rates and diagnostic levels.

:class:`PipelineHealth` is fed by the image callbacks and the worker (thread-safe) and turns its
counters into a :class:`HealthReport`: one :class:`Status` for the pipeline and one per camera, each
with a level (:data:`OK`, :data:`WARN`, :data:`ERROR`), a message saying what is wrong and what it
waits for, a hardware id and key/values. The ROS node only converts these to
``diagnostic_msgs/DiagnosticStatus``; nothing here knows about ROS.

Times are monotonic seconds (``time.monotonic``), latencies milliseconds, rates Hz.

Example::

    health = PipelineHealth(["cam0", "cam1"], {"cam0": "/cam0/image_raw", "cam1": "/cam1/image_raw"})
    health.image_arrived("cam0")
    report = health.report(sync_stats, queue_drops, source="multicam_node")
    report.statuses[0].level, report.statuses[0].message
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

#: Diagnostic levels, the values of diagnostic_msgs/DiagnosticStatus.
OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class HealthConfig:
    """When the report raises its levels."""

    camera_timeout_s: float = 1.0
    """A camera with no image for this long is not alive (its status WARNs)."""
    output_timeout_s: float = 2.0
    """The pipeline WARNs when no set was published for this long (counted from start-up)."""
    error_hold_s: float = 5.0
    """An input error keeps its camera's status at ERROR this long."""
    window: int = 600
    """Latencies and output times kept for the percentiles and the rate."""
    rate_window_s: float = 5.0
    """The output rate is measured over the publications of the last this many seconds."""

    def __post_init__(self) -> None:
        for name in ("camera_timeout_s", "output_timeout_s", "error_hold_s", "rate_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HealthConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.window < 2:
            raise ValueError(f"HealthConfig.window must be >= 2, got {self.window}")


@dataclass
class Status:
    """One diagnostic status: ``name`` is ``pipeline`` or ``camera <name>``; ``values`` plain numbers/strings."""

    name: str
    level: int
    message: str
    hardware_id: str
    values: dict = field(default_factory=dict)


@dataclass
class HealthReport:
    """Counters at one moment (see :meth:`PipelineHealth.report`) and the statuses made of them.

    Attributes:
        sets_in: synchronised sets handed to the worker; sets_out: sets published.
        drops: sets (or, for ``sync_*``, messages) dropped, by reason.
        rejected: published sets whose estimate was rejected as implausible (published empty), by reason.
        output_rate_hz: publications per second over the last ``rate_window_s``.
        latency_p50_ms, latency_p95_ms: arrival of a set's last image -> publication; NaN before any.
        estimator_p50_ms: the estimator's own time per set; NaN before any.
        since_output_s: seconds since the last publication (or since start-up).
        images_in: camera -> images received; alive: camera -> an image within ``camera_timeout_s``.
        errors: "camera: reason" -> count of input errors.
        single_view_sets: published sets whose pose was lifted from one camera (fewer than two saw the person).
        single_view: the camera of the latest published set if it was single-view, else None.
        last_single_view: the camera of the latest single-view set so far, or None (kept after the views return).
        statuses: the pipeline's status, then one per camera.
    """

    sets_in: int
    sets_out: int
    drops: dict
    rejected: dict
    output_rate_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    estimator_p50_ms: float
    since_output_s: float
    images_in: dict
    alive: dict
    errors: dict
    partial_sets: int
    sync_resets: int
    single_view_sets: int = 0
    single_view: str | None = None
    last_single_view: str | None = None
    statuses: list = field(default_factory=list)


class PipelineHealth:
    """Thread-safe counters of one pipeline (see the module docstring).

    Args:
        cameras: camera names, in rig order.
        topics: camera -> where its images come from (named in messages, e.g. the ROS topic).
        config: :class:`HealthConfig`.
        clock: monotonic seconds (a test may pass its own).
    """

    def __init__(self, cameras, topics: dict | None = None, config: HealthConfig = HealthConfig(), clock=time.monotonic):
        self.cameras = list(cameras)
        self.topics = {c: (topics or {}).get(c, c) for c in self.cameras}
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._images = collections.Counter()
        self._last_image: dict[str, float] = {}
        self.sets_in = 0
        self.sets_out = 0
        self._drops = collections.Counter()
        self._rejected = collections.Counter()
        self._latency_ms = collections.deque(maxlen=config.window)
        self._estimator_ms = collections.deque(maxlen=config.window)
        self._out_times = collections.deque(maxlen=config.window)
        self._errors = collections.Counter()
        self._error_text: dict[str, str] = {}
        self._error_time: dict[str, float] = {}
        self._background: dict[str, str] = {}  # camera -> why its background looks contaminated (absent: fine)
        self._single_view_sets = 0
        self._single_view: str | None = None
        self._last_single_view: str | None = None

    # ------------------------------------------------------------------------------ events
    def image_arrived(self, camera: str, t: float | None = None) -> None:
        with self._lock:
            self._images[camera] += 1
            self._last_image[camera] = self._clock() if t is None else t

    def sets_synchronised(self, n: int) -> None:
        """``n`` sets handed to the worker (counted before the worker can see them)."""
        with self._lock:
            self.sets_in += n

    def dropped(self, reason: str, n: int = 1) -> None:
        """A synchronised set that will not be published (``waiting_camera_info``, ``bad_images``, ``exception``)."""
        with self._lock:
            self._drops[reason] += n

    def published(self, last_arrival: float, estimator_ms: float, rejected: str | None = None,
                  single_view: str | None = None) -> None:
        """A set was published; ``last_arrival``: monotonic time of its last image; ``rejected``: why its
        estimate was published empty, or None; ``single_view``: the camera its pose was lifted from, or None."""
        now = self._clock()
        with self._lock:
            self.sets_out += 1
            if rejected:
                self._rejected[rejected] += 1
            self._single_view = single_view
            if single_view is not None:
                self._single_view_sets += 1
                self._last_single_view = single_view
            self._latency_ms.append((now - last_arrival) * 1e3)
            self._estimator_ms.append(float(estimator_ms))
            self._out_times.append(now)

    def error(self, source: str, reason: str, text: str) -> None:
        """An input problem of camera ``source`` (or of the ``pipeline``): counted and shown for ``error_hold_s``."""
        key = f"{source}: {reason}"
        with self._lock:
            self._errors[key] += 1
            self._error_text[key] = text
            self._error_time[key] = self._clock()

    def background(self, camera: str, problem: str | None) -> bool:
        """Camera ``camera``'s background looks contaminated (``problem``: why, and what to do) or fine (None).
        Its status WARNs while a problem stands. Returns True when the state changed (to log it once)."""
        with self._lock:
            before = self._background.get(camera)
            if problem:
                self._background[camera] = problem
            else:
                self._background.pop(camera, None)
            return (before is None) != (problem is None)

    @property
    def errors(self) -> dict:
        """"source: reason" -> count."""
        with self._lock:
            return dict(self._errors)

    @property
    def drops(self) -> dict:
        with self._lock:
            return dict(self._drops)

    # ------------------------------------------------------------------------------ report
    def report(self, sync_stats: dict, queue_drops: dict, source: str, slop_s: float | None = None) -> HealthReport:
        """Counters and statuses now.

        Args:
            sync_stats: :meth:`kp3d_core.sync.ApproximateTimeSync.stats` (its drops become ``sync_<reason>``).
            queue_drops: the worker queue's drops by reason (they become ``slot_<reason>``).
            source: hardware id of the pipeline status (e.g. the node's name).
            slop_s: the synchroniser's slop, named when images arrive but form no set.
        """
        cfg = self.config
        now = self._clock()
        with self._lock:
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            est = np.asarray(self._estimator_ms, dtype=np.float64)
            recent = [t for t in self._out_times if now - t <= cfg.rate_window_s]
            rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
            drops = {f"sync_{k}": int(v) for k, v in sync_stats["dropped"].items()}
            drops.update({f"slot_{k}": int(v) for k, v in queue_drops.items()})
            drops.update({k: int(v) for k, v in self._drops.items()})
            last_out = self._out_times[-1] if self._out_times else self._start
            age = {c: now - self._last_image[c] if c in self._last_image else None for c in self.cameras}
            fresh_errors = {k: self._error_text[k] for k in sorted(self._error_time)
                            if now - self._error_time[k] <= cfg.error_hold_s}
            background = dict(self._background)
            rep = HealthReport(
                sets_in=self.sets_in, sets_out=self.sets_out, drops=drops, rejected=dict(self._rejected),
                output_rate_hz=rate,
                latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else float("nan"),
                latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else float("nan"),
                estimator_p50_ms=float(np.median(est)) if est.size else float("nan"),
                since_output_s=now - last_out, images_in={c: self._images[c] for c in self.cameras},
                alive={c: a is not None and a <= cfg.camera_timeout_s for c, a in age.items()},
                errors=dict(self._errors), partial_sets=int(sync_stats["partial_sets"]),
                sync_resets=int(sync_stats["resets"]), single_view_sets=self._single_view_sets,
                single_view=self._single_view, last_single_view=self._last_single_view,
            )
        rep.statuses = [self._pipeline_status(rep, source, fresh_errors, slop_s)]
        rep.statuses += [self._camera_status(rep, c, age[c], fresh_errors, background.get(c)) for c in self.cameras]
        return rep

    def _pipeline_status(self, rep: HealthReport, source: str, fresh_errors: dict, slop_s: float | None) -> Status:
        cfg = self.config
        values = {
            "sets_in": rep.sets_in, "sets_out": rep.sets_out, "output_rate_hz": rep.output_rate_hz,
            "latency_p50_ms": rep.latency_p50_ms, "latency_p95_ms": rep.latency_p95_ms,
            "estimator_p50_ms": rep.estimator_p50_ms, "seconds_since_output": rep.since_output_s,
            "drops_total": sum(rep.drops.values()), "partial_sets": rep.partial_sets, "sync_resets": rep.sync_resets,
            "rejected_total": sum(rep.rejected.values()),
            "mode": "multi_view" if rep.single_view is None else "single_view",
            "single_view_camera": rep.single_view or "", "single_view_sets": rep.single_view_sets,
            "last_single_view_camera": rep.last_single_view or "",
        }
        values.update({f"drops.{k}": v for k, v in sorted(rep.drops.items())})
        values.update({f"rejected.{k}": v for k, v in sorted(rep.rejected.items())})
        own = [text for key, text in fresh_errors.items() if key.startswith("pipeline: ")]
        if own:
            return Status("pipeline", ERROR, "; ".join(own), source, values)
        if rep.since_output_s <= cfg.output_timeout_s:
            single = "" if rep.single_view is None else f", single view: only {rep.single_view} sees the person"
            return Status("pipeline", OK, f"{rep.output_rate_hz:.1f} Hz{single}", source, values)
        return Status("pipeline", WARN, self._why_no_output(rep, slop_s), source, values)

    def _why_no_output(self, rep: HealthReport, slop_s: float | None) -> str:
        head = f"no synchronised set published in the last {self.config.output_timeout_s:g} s: "
        silent = [c for c in self.cameras if not rep.alive[c]]
        if silent:
            waits = [f"{self.topics[c]} ({'no image yet' if rep.images_in[c] == 0 else 'stopped'})" for c in silent]
            return head + "waiting for " + ", ".join(waits)
        if rep.sets_in == rep.sets_out:
            slop = f" more than the slop ({slop_s * 1e3:g} ms)" if slop_s is not None else ""
            return head + f"images arrive from every camera but form no set (do their stamps differ by{slop or ' too much'}?)"
        drops = ", ".join(f"{k} {v}" for k, v in sorted(rep.drops.items()) if v and not k.startswith("sync_"))
        return head + f"{rep.sets_in - rep.sets_out} sets synchronised but not published (drops: {drops or 'none yet'})"

    def _camera_status(self, rep: HealthReport, camera: str, age: float | None, fresh_errors: dict,
                       background: str | None = None) -> Status:
        values = {"images": rep.images_in[camera], "topic": self.topics[camera],
                  "seconds_since_image": float("nan") if age is None else age,
                  "background": "contaminated" if background else "ok"}
        prefix = f"{camera}: "
        values.update({f"errors.{k[len(prefix):]}": v for k, v in sorted(rep.errors.items()) if k.startswith(prefix)})
        own = [text for key, text in fresh_errors.items() if key.startswith(prefix)]
        if own:
            return Status(f"camera {camera}", ERROR, "; ".join(own), camera, values)
        if not rep.alive[camera]:
            what = "no image yet" if age is None else f"no image for {age:.1f} s"
            return Status(f"camera {camera}", WARN, f"not alive: {what} on {self.topics[camera]}", camera, values)
        if background:
            return Status(f"camera {camera}", WARN, background, camera, values)
        return Status(f"camera {camera}", OK, "alive", camera, values)


def contamination_advice(camera: str, reasons: list[str], stored: bool) -> str:
    """The WARN message (and log line) for camera ``camera`` whose background looks contaminated: what was seen
    (``reasons``, :meth:`kp3d_core.inference.predictor.ContaminationMonitor.reasons`) and what to do, for stored
    backgrounds (``model.backgrounds``) or learnt ones."""
    seen = "; ".join(reasons) or "signs of a ghost"
    if stored:
        todo = ("the stored background no longer matches the scene (furniture moved? the light?): record a few "
                "seconds of the empty scene again, run `kp3d background --bag EMPTY_BAG --out DIR` and restart with "
                "model.backgrounds:=DIR")
    else:
        todo = ("the background learnt from the first frames holds something that is not the empty room (a person "
                "in view from the start, someone standing in the background): record a few seconds of the empty "
                "scene, run `kp3d background --bag EMPTY_BAG --out DIR` and start the node with "
                "model.backgrounds:=DIR (or `kp3d background --bag THIS_RECORDING --rig RIG --person`); it heals "
                "as the person moves away from where they stood")
    return f"background of camera {camera} looks contaminated ({seen}): {todo}"
