"""Training the single-view lifter on multi-view pseudo-labels, with Chen et al.'s geometric self-supervision.

Terms (each switchable, :class:`LiftConfig`):

- **pseudo-labels**: the lifted keypoints against the triangulated ones in the same camera's levelled frame
  (:func:`~kp3d_core.inference.single_view.levelling`), both relative to
  their mean (L2 per keypoint, metres). Only frames the views triangulated completely carry a label.
- **rotation cycle** (``cycle``): the lifted shape is turned to a random viewpoint (azimuth anywhere about the
  world's vertical, elevation within ``elevation_deg``), projected into a virtual camera at the same distance,
  lifted again and turned back; the second lift must match the turned first one (3D, metres) and, turned back and
  stood where the first one stands, project onto the observed keypoints (2D, in units of the keypoints' spread).
  The first lift's own reprojection is held to the observed keypoints the same way. Frames without a label train
  through these terms too.
- **discriminator** (``adversarial``): a small network tells real views' 2D shapes from those of the turned lifted
  shapes; the lifter is asked to fool it, so that what it lifts looks like a person from every side.
- **temporal window** (``window``): the lifter reads the last ``window`` frames of the view (causal, as at run time).

Example::

    data = LiftData.from_tracks(tracks)
    entry, log = train_lifter(data, LiftConfig(), floor=floor_offset(tracks))
    ckpt["lifter"] = entry     # what the estimator's SingleViewLifter loads
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..geometry import solve_translation
from ..inference.single_view import MIN_KEYPOINTS, UP, levelling
from ..models.lifter import LifterNet, PoseDiscriminator, lifter_inputs
from .tracks import Track


@dataclass(frozen=True)
class LiftConfig:
    """What ``kp3d lift`` trains (the ablation of ``kp3d bench lift`` switches the terms)."""

    window: int = 1
    """Frames the lifter reads (1: per frame)."""
    cycle: float = 0.0
    """Weight of the rotation cycle's terms (0: off). Off by default: with the pseudo-labels of a 4-camera rig it did
    not help (``kp3d bench lift``, docs/lift.md); it is there for rigs whose views triangulate few frames."""
    adversarial: float = 0.0
    """Weight of the discriminator's term (0: off; needs ``cycle`` > 0, it judges the turned projections)."""
    reprojection: float = 0.1
    """Weight of the 2D terms within the cycle, relative to its 3D term (2D errors are in keypoint spreads)."""
    elevation_deg: float = 20.0
    """Largest elevation of the cycle's virtual viewpoints, degrees."""
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    """Adam learning rate, cosine-decayed to a tenth."""
    width: int = 512
    blocks: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("window", "steps", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"LiftConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("cycle", "adversarial", "reprojection", "lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"LiftConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.adversarial > 0 and self.cycle <= 0:
            raise ValueError("LiftConfig.adversarial needs cycle > 0 (the discriminator judges the turned projections)")


@dataclass
class LiftData:
    """Every (frame, view) of the tracks as rows; a track's view is a run of consecutive rows."""

    rays: torch.Tensor
    """(N, K, 2) normalised image coordinates, NaN where missing."""
    conf: torch.Tensor
    """(N, K) confidences, 0 where missing."""
    feats: torch.Tensor
    """(N, K*3 + 2) :func:`~kp3d_core.models.lifter.lifter_inputs` of each row."""
    target: torch.Tensor
    """(N, K, 3) triangulated keypoints in the row's levelled camera frame about their mean, metres (0: no label)."""
    labelled: torch.Tensor
    """(N,) bool: every keypoint triangulated and the view saw the person."""
    liftable: torch.Tensor
    """(N,) bool: the view saw at least MIN_KEYPOINTS keypoints."""
    start: torch.Tensor
    """(N,) the first row of the row's track view (windows do not reach before it)."""
    up: torch.Tensor
    """(N, 3) the world's vertical in the row's levelled camera frame (0, -1, 0)."""

    @classmethod
    def from_tracks(cls, tracks: list[Track]) -> "LiftData":
        parts = {k: [] for k in ("rays", "conf", "target", "labelled", "liftable", "start", "up")}
        row = 0
        for tr in tracks:
            rays, cam_pts = tr.rays(), tr.in_camera()
            T = rays.shape[0]
            for v, cam in enumerate(tr.cameras):
                seen = (tr.confidence[:, v] > 0) & np.isfinite(rays[:, v]).all(-1)
                labelled = tr.valid.all(-1) & (seen.sum(-1) >= MIN_KEYPOINTS)
                target = cam_pts[:, v] - cam_pts[:, v].mean(-2, keepdims=True)
                parts["rays"].append(rays[:, v])
                parts["conf"].append(np.where(seen, tr.confidence[:, v], 0.0))
                parts["target"].append(np.where(labelled[:, None, None], target, 0.0))
                parts["labelled"].append(labelled)
                parts["liftable"].append(seen.sum(-1) >= MIN_KEYPOINTS)
                parts["start"].append(np.full(T, row))
                parts["up"].append(np.tile(levelling(cam) @ cam.R @ UP, (T, 1)))
                row += T
        if row == 0:
            raise ValueError("LiftData: no frames in the tracks")
        d = {k: torch.from_numpy(np.concatenate(v)) for k, v in parts.items()}
        rays, conf = d["rays"].float(), d["conf"].float()
        return cls(rays, conf, lifter_inputs(rays, conf), d["target"].float(), d["labelled"], d["liftable"],
                   d["start"].long(), d["up"].float())

    def __len__(self) -> int:
        return int(self.rays.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.rays.shape[1])


def floor_offset(tracks: list[Track]) -> float | None:
    """Median height above the floor (z = 0) of the lowest triangulated keypoint over the frames the views
    triangulated completely, metres; None when there is none."""
    lows = [np.min(tr.keypoints3d[tr.valid.all(-1)][..., 2], axis=-1) for tr in tracks if tr.valid.all(-1).any()]
    return float(np.median(np.concatenate(lows))) if lows else None


def window_rows(rows: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) rows -> (B, length) the rows of the causal window ending at each, oldest first; rows before the track's
    start repeat its first row (as the run-time lifter repeats its oldest frame)."""
    r = rows[:, None] - (length - 1) + torch.arange(length)[None]
    return torch.maximum(r, start[rows][:, None])


def axis_rotations(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(B, 3) unit axes, (B,) radians -> (B, 3, 3) rotation matrices (Rodrigues)."""
    a = F.normalize(axis, dim=-1)
    x, y, z = a.unbind(-1)
    zero = torch.zeros_like(x)
    Kx = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(-1, 3, 3)
    s, c = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return torch.eye(3).expand_as(Kx) + s * Kx + (1 - c) * Kx @ Kx


def random_viewpoints(up: torch.Tensor, elevation_deg: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 3) the vertical in camera frames -> (B, 3, 3) rotations: an azimuth in [-pi, pi) about the vertical, then
    an elevation within +-elevation_deg about the camera's x axis."""
    B = up.shape[0]
    azimuth = (torch.rand(B, generator=generator) * 2 - 1) * math.pi
    elevation = (torch.rand(B, generator=generator) * 2 - 1) * math.radians(elevation_deg)
    x_axis = torch.tensor([1.0, 0.0, 0.0]).expand(B, 3)
    return axis_rotations(x_axis, elevation) @ axis_rotations(up, azimuth)


def project_rays(points: torch.Tensor, min_depth: float = 0.1) -> torch.Tensor:
    """(..., K, 3) camera-frame points -> (..., K, 2) normalised image coordinates."""
    return points[..., :2] / points[..., 2:].clamp_min(min_depth)


def reprojection_term(shape: torch.Tensor, T: torch.Tensor, rays: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted distance between ``shape + T`` projected and the observed rays, in units of the rays'
    RMS spread (so near and far people count alike). (B, K, 3), (B, 3), (B, K, 2), (B, K) -> scalar."""
    ok = torch.isfinite(rays).all(-1) & (conf > 0)
    w = torch.where(ok, conf, torch.zeros_like(conf))
    r = torch.nan_to_num(rays)
    m = (w[..., None] * r).sum(-2) / w.sum(-1, keepdim=True).clamp_min(1e-8)
    spread = ((w * ((r - m[:, None]) ** 2).sum(-1)).sum(-1) / w.sum(-1).clamp_min(1e-8)).sqrt().clamp_min(1e-4)
    err = (project_rays(shape + T[:, None]) - r).norm(dim=-1) / spread[:, None]
    return (w * err).sum() / w.sum().clamp_min(1e-8)


def learning_rate(step: int, cfg: LiftConfig) -> float:
    """Cosine decay from ``lr`` to ``lr / 10``."""
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / max(cfg.steps, 1), 1.0))))


def train_lifter(data: LiftData, cfg: LiftConfig = LiftConfig(), progress: bool = True,
                 floor: float | None = None) -> tuple[dict, dict]:
    """Train a lifter on ``data``; returns (the checkpoint's ``lifter`` entry, a log of mean terms and seconds).
    ``floor``: the entry's ``floor_offset`` (:func:`floor_offset` of the tracks; None: placement by the rays alone)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    K, W = data.num_keypoints, cfg.window
    net = LifterNet(K, W, cfg.width, cfg.blocks)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    disc = PoseDiscriminator(K) if cfg.adversarial > 0 else None
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if disc is not None else None
    pool = torch.nonzero(data.liftable & (data.labelled | (cfg.cycle > 0))).squeeze(1)
    if pool.numel() == 0:
        raise ValueError("train_lifter: no labelled frame to train on (did the views triangulate anything?)")
    sums: dict[str, float] = {}
    t0 = time.perf_counter()
    net.train()
    for step in tqdm(range(cfg.steps), desc="lifter", unit="step", disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, cfg)
        rows = pool[torch.randint(len(pool), (cfg.batch_size,), generator=gen)]
        terms = _step_terms(net, disc, data, rows, cfg, gen)
        loss = sum(w * terms[k] for k, w in _weights(cfg).items() if k in terms)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if disc is not None:
            d_loss = _discriminator_loss(disc, terms["real"], terms["fake"].detach())
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            terms["discriminator"] = d_loss.detach()
        for k, v in terms.items():
            if k not in ("real", "fake"):
                sums[k] = sums.get(k, 0.0) + float(v.detach())
    net.eval()
    entry = {"num_keypoints": K, "window": W, "width": cfg.width, "blocks": cfg.blocks, "floor_offset": floor,
             "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
             "info": {"config": asdict(cfg), "rows": len(data), "labelled": int(data.labelled.sum())}}
    log = {k: v / cfg.steps for k, v in sums.items()}
    log["seconds"] = time.perf_counter() - t0
    return entry, log


def _weights(cfg: LiftConfig) -> dict[str, float]:
    return {"pseudo": 1.0, "cycle_3d": cfg.cycle, "cycle_2d": cfg.cycle * cfg.reprojection,
            "adversarial": cfg.adversarial}


def _step_terms(net: LifterNet, disc: PoseDiscriminator | None, data: LiftData, rows: torch.Tensor,
                cfg: LiftConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The step's terms on the batch ``rows`` (B,) (see the module docstring)."""
    W = cfg.window
    # The cycle re-lifts a whole window of turned frames, so it needs the lifts of the window's W frames, each
    # from its own causal window: 2W - 1 rows in all.
    L = 2 * W - 1 if cfg.cycle > 0 else W
    win = window_rows(rows, data.start, L)  # (B, L)
    ends = range(W - 1, L) if cfg.cycle > 0 else [L - 1]
    lifts = torch.stack([net(data.feats[win[:, e - W + 1: e + 1]]) for e in ends], dim=1)  # (B, n, K, 3)
    Y = lifts[:, -1]
    lab = data.labelled[rows]
    terms = {"pseudo": ((Y - data.target[rows]).norm(dim=-1).mean(-1) * lab).sum() / lab.sum().clamp_min(1)}
    if cfg.cycle <= 0:
        return terms
    rays, conf = data.rays[rows], data.conf[rows]
    T = solve_translation(Y.double(), rays.double(), torch.where(torch.isfinite(rays).all(-1), conf, 0).double())
    T = torch.nan_to_num(T.float(), nan=0.0).detach()
    T[:, 2] = T[:, 2].clamp_min(0.5)
    R = random_viewpoints(data.up[rows], cfg.elevation_deg, gen)  # (B, 3, 3)
    turned = torch.einsum("bij,bnkj->bnki", R, lifts)  # (B, W, K, 3)
    depth = T.norm(dim=-1).clamp(1.0, 20.0)[:, None, None, None]
    virtual = project_rays(turned + torch.cat([torch.zeros_like(depth), torch.zeros_like(depth), depth], -1))
    x_turned = lifter_inputs(virtual, data.conf[win[:, W - 1:]])  # (B, W, F)
    relifted = net(x_turned)
    back = torch.einsum("bji,bkj->bki", R, relifted)  # R^T relifted
    # The first lift, turned, is the second one's target and not pulled towards it: a shape that shrinks or flattens
    # would satisfy both sides of a symmetric cycle at once.
    terms["cycle_3d"] = (relifted - turned[:, -1].detach()).norm(dim=-1).mean()
    terms["cycle_2d"] = reprojection_term(back, T, rays, conf) + reprojection_term(Y, T, rays, conf)
    if disc is not None:
        fake, real = x_turned[:, -1], data.feats[rows]
        terms["adversarial"] = F.binary_cross_entropy_with_logits(disc(fake), torch.ones(len(rows)))
        terms["real"], terms["fake"] = real, fake
    return terms


def _discriminator_loss(disc: PoseDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    ones, zeros = torch.ones(real.shape[0]), torch.zeros(fake.shape[0])
    return (F.binary_cross_entropy_with_logits(disc(real), ones)
            + F.binary_cross_entropy_with_logits(disc(fake), zeros)) / 2
