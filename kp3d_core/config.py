"""Typed training configuration: dataclasses with a docstring per field, loaded from YAML.

A YAML file mirrors the nesting of :class:`Config` (``model:``, ``loss:``, ``data:``, ``train:``);
any key the dataclasses do not define is an error naming the file and the dotted key, so a typo
never silently falls back to a default. Example::

    cfg = load_config("training/configs/tiny.yaml")
    cfg.model.num_keypoints          # 32
    save_dict = config_to_dict(cfg)  # plain dict, stored in every checkpoint
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """Invalid configuration; the message names the file and the dotted key."""


@dataclass
class ModelConfig:
    """The keypoint network (encoder + heatmap head) and the training-only decoder."""

    crop_size: int = 64
    """S: side of the square input crop in pixels (64-96)."""
    num_keypoints: int = 32
    """K: number of discovered keypoints (17 for --supervised, matching the studio joints)."""
    width: int = 12
    """Channels of the first encoder stage (w); deeper stages use 2w, 4w, 8w."""
    heatmap_stride: int = 2
    """Heatmaps have side S / heatmap_stride."""
    confidence_scale: float = 0.05
    """s0 in confidence = s0 / (s0 + spread), spread = heatmap std as a fraction of the crop side."""
    decoder_width: int = 24
    """Channels of the decoder (training only; not part of the exported keypoint net)."""
    decoder_sigma: float = 0.04
    """Std of the keypoint Gaussians fed to the decoder, as a fraction of the crop side."""


@dataclass
class LossConfig:
    """Loss weights; a weight of 0 switches the term off (loss ablation)."""

    reconstruction: float = 1.0
    """Foreground-weighted L1 between I and I~ = M*D + (1-M)*B."""
    structure: float = 1.0
    """L1 between image gradients of I and I~ (the structural term; see losses.gradient_loss)."""
    foreground_weight: float = 5.0
    """Pixels weighted 1 + (w-1)*fg in the reconstruction (REFERENCE section 5: keeps the arms)."""
    mask: float = 1.0
    """L2 between the mask rendered from reprojected keypoints and the decoder mask M (kp3d's decoder draws M from the
    keypoints, so this term cannot spread collapsed keypoints: an addition, not the paper's mask term)."""
    mask_to_fg: float = 1.0
    """L2 between the rendered mask and the soft |I - B| foreground: the paper's mask term, whose M is the subject mask
    estimated without labels (the accuracy bench's ablation counts it as such)."""
    coverage: float = 1.0
    """Each keypoint's heatmap mass should lie on the soft foreground (Honari & Fua)."""
    centering: float = 0.5
    """Mean of the reprojected keypoints near the centroid of the soft |I - B| foreground (Honari & Fua's centering;
    the paper's centre is that of a box its network learns, kp3d's crop box is fixed, so the centroid stands in)."""
    fill: float = 2.0
    """Addition: the union of reprojected keypoint Gaussians must cover the soft foreground."""
    thin_fill: float = 0.0
    """Addition: fill restricted to the thin parts of the foreground (arms, shins: fg minus its opening), so that an
    uncovered forearm costs as much as the trunk."""
    thin_kernel: int = 3
    """Side (crop pixels, odd) of the opening that defines the thin parts: parts narrower than it count."""
    separation: float = 1.0
    """Addition: Gaussian kernel prior pushing 3D keypoints apart."""
    separation_sigma_m: float = 0.08
    """Kernel width of the separation prior, metres."""
    temporal: float = 0.0
    """Addition: the centred 3D keypoints of frames of one clip ``temporal_offset`` frames apart should change little
    (Charbonnier, metres; ``temporal_order``), so that a keypoint keeps its body part over time instead of swapping
    limbs as the body turns (kp3d_core.data.pairs). Training then draws batch_size / (temporal_order + 1) such windows
    per step."""
    temporal_offset: int = 3
    """Frames between consecutive frames of a temporal window (3 = 0.1 s at 30 fps)."""
    temporal_order: int = 1
    """What the temporal term charges: 1 the move between two frames; 2 the second difference over three frames
    (the change of velocity), which leaves a limb's steady motion free and charges a label handed from one limb to
    the other where they meet (kp3d_core.data.pairs)."""
    consistency: float = 0.1
    """L1 between detected 2D keypoints and their reprojected 3D keypoints (fraction of crop side)."""
    render_sigma: float = 0.06
    """Std of the Gaussians drawn for the rendered mask, fraction of the crop side."""
    supervised: float = 1.0
    """Weight of the 2D joint loss when training with --supervised."""
    distill: float = 0.0
    """Label-free distillation, for fine-tuning (``kp3d adapt``): L1 (fraction of the crop side) between the keypoints
    and those the frozen net of ``train.init_from`` finds on the same crops, weighted by that net's confidence, so that
    each keypoint keeps the body part it had (the part a fitted mapping reads). Needs ``train.init_from``."""
    # Mask as Supervision (seed 002; kp3d_core.mas): named joints without labels. Every weight 0 = off, the default,
    # so that configs without these keys train as before. Any of skeleton, physique, symmetry needs
    # model.num_keypoints 17: keypoint k is the joint skeleton.JOINT_NAMES[k].
    skeleton: float = 0.0
    """MaS skeleton term: the skeleton mask drawn from the reprojected joints (bones + torso lines,
    kp3d_core.skeleton_mask) against the soft |I - B| foreground, mean squared difference inside and outside it
    (kp3d_core.mas.skeleton_loss)."""
    skeleton_sigma: float = 0.02
    """Width of the drawn body lines, fraction of the crop side: exp(-d^2 / sigma^2) (the paper's 5 px at 256)."""
    skeleton_arm_sigma: float = 0.012
    """Width of the drawn arm bones (shoulder-elbow, elbow-wrist), fraction of the crop side: arms are thinner."""
    skeleton_union: str = "max"
    """How the lines combine into one mask: 'max' or 'soft' (1 - prod(1 - m))."""
    physique: float = 0.0
    """MaS physique term: a small U-Net (kp3d_core.models.physique, training only) maps the skeleton mask to a
    silhouette, L2 against the soft foreground; the gradient through the net makes the bones cover the body."""
    physique_width: int = 32
    """Channels of the physique net's first stage (w, 2w, 4w: the paper's 32-64-128). A training-only head, kept out
    of ModelConfig so that model configs stored in existing checkpoints still compare equal."""
    symmetry: float = 0.0
    """MaS left/right symmetry: |length(left bone) - length(right bone)| of the triangulated joints, metres."""
    geodesic: bool = False
    """Weight the skeleton and physique pixels by the geodesic weights of the foreground (kp3d_core.geodesic):
    exp(2d) + 1 inside, 3d + 20 outside; computed once per batch on the CPU."""
    geodesic_threshold: float = 0.5
    """The soft foreground counts as silhouette above this value (for the geodesic weights)."""
    arms_from_step: int = 0
    """Cascade: until this step the arm bones (elbows, wrists) are neither drawn nor in the symmetry term (stage 1:
    trunk and legs settle first)."""
    physique_from_step: int = 0
    """Cascade: the physique term (and the physique net) start at this step, once the skeleton term has settled."""
    upright: float = 0.0
    """MaS posture prior (skeleton mode, kp3d_core.mas.upright_loss): down the trunk (head, neck, thorax, spine, pelvis)
    and each leg (hip, knee, ankle) every joint at least ``upright_margin_m`` above the next, in world height along
    ``upright_axis``; hinged, metres. Breaks the head/feet symmetry that the masks leave. No labels: the up direction
    comes from the calibration."""
    upright_margin_m: float = 0.03
    """Height (metres) an upper joint must keep above its lower one to cost nothing in ``upright``."""
    upright_axis: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])
    """The world's up direction in rig coordinates (studio rigs: z up, the floor at z = 0); ``upright`` and
    ``width`` use it."""
    width: float = 0.0
    """MaS body-width prior (skeleton mode, kp3d_core.mas.width_loss): hips at least 0.15 m and shoulders at least
    0.22 m apart horizontally (across ``upright_axis``); hinged, metres. Parts each left joint from its right twin
    where both start on the midline."""
    hinges: float = 0.0
    """MaS anatomy prior (skeleton mode, kp3d_core.mas.hinge_loss): knees bend forward and elbows backward (elbows from
    ``arms_from_step``), forward being up x (right hip - left hip); hinged, metres. The one term that tells left from
    right: a mirrored skeleton draws the same masks but bends its knees backward."""
    proportions: float = 0.0
    """MaS body-proportion prior (skeleton mode, kp3d_core.mas.proportion_loss): each bone's share of the mean bone
    length within ``proportions_tolerance`` of a generic body's, hinged on the log ratio. Fixes where the joints
    between a line's ends sit (the spine on the trunk), which the masks leave free."""
    proportions_tolerance: float = 0.35
    """How far (a fraction) a bone's share may stray from the generic body's for free in ``proportions``."""
    view_flips: bool = False
    """Skeleton mode: before the training forward triangulates, swap the left/right labels of the views that disagree
    with the others (kp3d_core.view_flips.resolve_view_flips: least reprojection residual, no labels), so that the 3D
    joints, their reprojections and every term drawn from them are in the majority's labelling; with
    ``consistency`` > 0 the swapped views' own keypoints are then pulled to that labelling. Needs 17 keypoints."""


@dataclass
class AugmentConfig:
    """Label-free training augmentation (kp3d_core.augment); 0 = off."""

    background_swap: float = 0.0
    """Probability, per view crop, that the keypoint net sees the crop's foreground (soft |I - B| mask) laid on the
    background crop of another sample of the batch (often another camera) instead of its own. Why: the room behind
    the subject tells the net which camera it looks through, so it can label the left/right limbs by a direction in
    the world rather than on the body; the reconstruction target and its composite keep the true background."""


@dataclass
class DataConfig:
    """Where training samples come from."""

    source: str = "studio"
    """'studio' (a studio dataset folder, kp3d_core.data), 'bag' (a rosbag2 recording with Image + CameraInfo
    topics, your own data; needs ``rig``) or 'synthetic' (random tensors, for tests)."""
    path: str = "../shared/data/studio/train"
    """Studio dataset folder or rosbag2 directory (relative paths are relative to the working directory)."""
    val_path: str = ""
    """Validation data of the same source kind as ``path`` (a studio folder, or a rosbag2 directory recorded with the
    same ``rig``), e.g. the preset's val split; empty: no validation. Validation is label-free: the training loss
    terms on ``train.val_samples`` fixed samples of it (kp3d_core.train)."""
    rig: str = ""
    """Rig file with each camera's T_world_cam (source 'bag' only; intrinsics come from the bag's CameraInfo)."""
    backgrounds: str = ""
    """Stored empty-scene backgrounds, ``<camera>.png`` per camera, instead of ones estimated from the frames (the
    temporal mode holds a person who never leaves the view): for a bag, a folder (``kp3d background``); for a
    studio or sessions folder, a folder name inside each (``backgrounds``: its own empty room). Empty: estimated."""
    bag_stride: int = 1
    """Keep every bag_stride-th synchronised frame of the bag (source 'bag')."""
    bag_slop_ms: float = 5.0
    """Largest header-stamp spread within one multi-camera frame of the bag, in ms (source 'bag')."""
    views: list[str] = field(default_factory=list)
    """Camera names to use (empty: all cameras of the rig)."""
    num_synthetic: int = 16
    """Number of samples of the synthetic source."""
    num_views: int = 4
    """Views per sample of the synthetic source."""
    num_workers: int = 0
    """DataLoader worker processes."""
    cache_dir: str = ""
    """Root of the crop cache (empty: ``crops/`` in the user cache, ``$KP3D_CACHE`` or ``~/.cache/kp3d``)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Label-free augmentation of the training batches."""


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpointing."""

    out_dir: str = "out/train/default"
    """Run folder: checkpoints (ckpt.pt), TensorBoard events, previews."""
    steps: int = 2000
    """Optimiser steps in total (a resumed run continues up to this)."""
    max_minutes: float = 0.0
    """Training-time budget in wall minutes (0: none). Training stops at ``steps`` or when the budget is spent,
    whichever comes first, and the learning-rate decay follows whichever is further along, so a time-budgeted
    run ends fully decayed. The time spent is kept in the checkpoint, so a resumed run spends only the rest."""
    batch_size: int = 8
    """Multi-view samples per step per process."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to lr/10 after warm-up)."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 5.0
    """Clip the global gradient norm (0: off)."""
    seed: int = 0
    """Random seed (each DDP rank adds its rank)."""
    log_every: int = 20
    """Steps between TensorBoard scalar writes."""
    preview_every: int = 500
    """Steps between preview images (0: never)."""
    checkpoint_every: int = 500
    """Steps between checkpoints (one is always written at the end)."""
    val_every: int = 500
    """Steps between validations on ``data.val_path`` (one more at the last step); rank 0 only under DDP, and its
    seconds count against ``max_minutes``."""
    val_samples: int = 192
    """Multi-view frames of ``data.val_path`` per validation: evenly spaced over it and the same every time, so the
    curve compares like with like (all of them if it holds fewer). A forward pass each, no backward: 192 frames every
    500 steps add about 2 % to the training time of studio64_swap_cover on a 2-core CPU."""
    device: str = "auto"
    """'auto' (cuda when available), 'cpu' or 'cuda'."""
    threads: int = 0
    """torch CPU threads (0: leave torch's default)."""
    supervised: bool = False
    """Train with ground-truth 2D joints (the upper bound); --supervised sets it."""
    head_init_scale: float = 1.0
    """Scale of the heatmap head's initial weights (its bias zeroed when < 1). 1: the default initialisation. Small
    (0.1): every heatmap starts nearly flat, so every keypoint starts near the crop's centre and moves off it as the
    losses single it out (skeleton mode: the upright prior orders head to feet, the skeleton spreads the limbs)
    instead of starting wherever a random head put it (a scrambled skeleton the masks do not untangle). Never 0:
    identical left and right channels get identical gradients and never part."""
    init_encoder_from: str = ""
    """Checkpoint whose keypoint-net encoder (every layer but the heatmap head, whose channels are the keypoints)
    starts a new run; the head, decoder and skeleton head start fresh. For a model of another ``num_keypoints`` with
    the same crop size, width and stride, e.g. a skeleton model from a label-free discovery model's features
    (kp3d_core/assets/model.pt). Empty: random initialisation. Not with ``init_from``."""
    init_from: str = ""
    """Checkpoint whose weights (keypoint net and decoder) a new run starts from, with a fresh optimiser (empty: random
    initialisation); its model config must be this run's. A resumed run continues from its own checkpoint instead, and
    this one stays the teacher of ``loss.distill``. ``kp3d adapt`` sets it to the model it adapts."""
    tensorboard: bool = True
    """Write TensorBoard events."""


@dataclass
class Config:
    """A complete training configuration."""

    name: str = "default"
    """Run name (used in logs)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _from_dict(cls, data, where: str, source: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{where or 'top level'}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        keys = ", ".join(f"{where}.{k}" if where else str(k) for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {keys} (allowed: {sorted(names)})")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _convert(hints[name], value, key, source)
    return cls(**kwargs)


def _convert(tp, value, key: str, source: str):
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value if value is not None else {}, key, source)
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{source}: '{key}': union types are not supported")  # none used
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: '{key}': unsupported type {tp}")


def _validate(cfg: Config, source: str) -> Config:
    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{source}: '{key}' {msg}")

    m = cfg.model
    need(m.crop_size >= 16 and m.crop_size % 8 == 0, "model.crop_size", f"must be a multiple of 8 >= 16, got {m.crop_size}")
    need(m.num_keypoints >= 2, "model.num_keypoints", f"must be >= 2, got {m.num_keypoints}")
    need(m.heatmap_stride in (1, 2, 4), "model.heatmap_stride", f"must be 1, 2 or 4, got {m.heatmap_stride}")
    need(m.width >= 4, "model.width", f"must be >= 4, got {m.width}")
    need(m.confidence_scale > 0, "model.confidence_scale", "must be > 0")
    need(cfg.loss.separation_sigma_m > 0, "loss.separation_sigma_m", "must be > 0")
    need(cfg.loss.temporal_offset >= 1, "loss.temporal_offset", f"must be >= 1 frame, got {cfg.loss.temporal_offset}")
    need(cfg.loss.temporal_order in (1, 2), "loss.temporal_order", f"must be 1 or 2, got {cfg.loss.temporal_order}")
    if cfg.loss.temporal > 0:
        window = cfg.loss.temporal_order + 1
        need(cfg.train.batch_size % window == 0, "train.batch_size",
             f"must be a multiple of {window} with loss.temporal on (it is made of temporal windows of "
             f"loss.temporal_order + 1 frames), got {cfg.train.batch_size}")
    need(cfg.loss.thin_kernel >= 3 and cfg.loss.thin_kernel % 2 == 1, "loss.thin_kernel", "must be an odd integer >= 3")
    for f in dataclasses.fields(LossConfig):
        v = getattr(cfg.loss, f.name)
        if isinstance(v, float):
            need(v >= 0, f"loss.{f.name}", f"must be >= 0, got {v}")
    need(cfg.data.source in ("studio", "bag", "synthetic"), "data.source",
         f"must be 'studio', 'bag' or 'synthetic', got {cfg.data.source!r}")
    if cfg.data.source == "bag":
        need(bool(cfg.data.rig), "data.rig", "a rig file with each camera's T_world_cam is needed for source 'bag'")
        need(cfg.data.bag_stride >= 1, "data.bag_stride", f"must be >= 1, got {cfg.data.bag_stride}")
        need(cfg.data.bag_slop_ms > 0, "data.bag_slop_ms", f"must be > 0, got {cfg.data.bag_slop_ms}")
    if cfg.data.val_path:
        need(cfg.data.source != "synthetic", "data.val_path", "must be empty for the synthetic source (no validation "
             "split)")
    a = cfg.data.augment
    need(0 <= a.background_swap <= 1, "data.augment.background_swap", f"must be in [0, 1], got {a.background_swap}")
    t = cfg.train
    need(t.steps >= 1, "train.steps", "must be >= 1")
    need(t.max_minutes >= 0, "train.max_minutes", f"must be >= 0, got {t.max_minutes}")
    need(t.batch_size >= 1, "train.batch_size", "must be >= 1")
    need(t.val_every >= 1, "train.val_every", f"must be >= 1, got {t.val_every} (empty data.val_path: no validation)")
    need(t.val_samples >= 1, "train.val_samples", f"must be >= 1, got {t.val_samples}")
    need(t.lr > 0, "train.lr", "must be > 0")
    need(t.device in ("auto", "cpu", "cuda"), "train.device", "must be 'auto', 'cpu' or 'cuda'")
    lo = cfg.loss
    if lo.skeleton > 0 or lo.physique > 0 or lo.symmetry > 0:
        need(m.num_keypoints == 17, "model.num_keypoints", "must be 17 (the named joints, skeleton.JOINT_NAMES) with "
             f"loss.skeleton, loss.physique or loss.symmetry on, got {m.num_keypoints}")
    need(lo.skeleton_sigma > 0 and lo.skeleton_arm_sigma > 0, "loss.skeleton_sigma",
         "and loss.skeleton_arm_sigma must be > 0")
    need(lo.skeleton_union in ("max", "soft"), "loss.skeleton_union", f"must be 'max' or 'soft', got {lo.skeleton_union!r}")
    need(lo.physique_width >= 4, "loss.physique_width", f"must be >= 4, got {lo.physique_width}")
    need(0 < lo.geodesic_threshold < 1, "loss.geodesic_threshold", f"must be in (0, 1), got {lo.geodesic_threshold}")
    need(lo.arms_from_step >= 0, "loss.arms_from_step", f"must be >= 0, got {lo.arms_from_step}")
    need(lo.physique_from_step >= 0, "loss.physique_from_step", f"must be >= 0, got {lo.physique_from_step}")
    if lo.upright > 0 or lo.width > 0 or lo.hinges > 0 or lo.proportions > 0:
        need(m.num_keypoints == 17, "model.num_keypoints",
             f"must be 17 with loss.upright, loss.width, loss.hinges or loss.proportions, got {m.num_keypoints}")
    need(lo.proportions_tolerance >= 0, "loss.proportions_tolerance", f"must be >= 0, got {lo.proportions_tolerance}")
    need(lo.upright_margin_m >= 0, "loss.upright_margin_m", f"must be >= 0, got {lo.upright_margin_m}")
    need(len(lo.upright_axis) == 3 and any(abs(float(a)) > 0 for a in lo.upright_axis), "loss.upright_axis",
         f"must be 3 numbers, not all 0, got {lo.upright_axis}")
    if lo.view_flips:
        need(m.num_keypoints == 17, "model.num_keypoints", f"must be 17 with loss.view_flips, got {m.num_keypoints}")
    need(not (t.init_from and t.init_encoder_from), "train.init_encoder_from", "and train.init_from exclude each other")
    need(0 < t.head_init_scale <= 1, "train.head_init_scale", f"must be in (0, 1], got {t.head_init_scale}")
    if t.supervised:
        need(m.num_keypoints == 17, "model.num_keypoints", "must be 17 (the studio joints) with --supervised")
    if cfg.loss.distill > 0:
        need(bool(t.init_from), "train.init_from", "must name the teacher checkpoint with loss.distill > 0")
        need(not t.supervised, "loss.distill", "must be 0 with --supervised (the labels are the target)")
    return cfg


def config_from_dict(data: dict, source: str = "config") -> Config:
    """Build and validate a :class:`Config` from a nested dict (unknown keys raise ConfigError)."""
    return _validate(_from_dict(Config, data or {}, "", source), source)


def load_config(path: str | Path) -> Config:
    """Load a YAML config file into a validated :class:`Config`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return config_from_dict(data or {}, str(path))


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict of a config (what checkpoints store)."""
    return dataclasses.asdict(cfg)
