"""Applying a fitted keypoints -> 17-joint mapping (the run-time half of ``kp3d map``; fitting: kp3d_core.fit_mapping).

A mapping sees the discovered 3D keypoints centred on their root (the keypoints' mean, or one chosen keypoint) and
predicts the 17 joints relative to that same origin: ``joints = origin + f(keypoints - origin)``. It is stored in a
checkpoint under ``mapping`` as plain tensors and values (loadable with ``torch.load(weights_only=True)``)::

    {"default": "mlp", "fraction": 0.1, "num_frames": 1200, "data": "...",
     "models": {"linear": {"weight": ..., "bias": ...}, "mlp": {"members": [{"state": ...}, ...]}}}

Example::

    check_mapping(ckpt["mapping"], num_keypoints=32)        # at start-up: ValueError if it does not fit
    joints = apply_mapping(ckpt["mapping"], keypoints3d)   # (..., K, 3) m -> (..., 17, 3) m
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..skeleton import NUM_JOINTS


def root_origin(keypoints: torch.Tensor, root: int) -> torch.Tensor:
    """(..., K, 3) with NaN for invalid keypoints -> (..., 3) centring origin (NaN if none valid)."""
    if root >= 0:
        return keypoints[..., root, :]
    ok = torch.isfinite(keypoints).all(-1, keepdim=True)
    n = ok.sum(-2)
    s = torch.where(ok, keypoints, torch.zeros_like(keypoints)).sum(-2)
    return torch.where(n > 0, s / n.clamp_min(1), torch.full_like(s, float("nan")))


def centred_features(keypoints: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """Centred keypoints, invalid ones zero (the origin): (..., K, 3) -> (..., K * 3)."""
    x = keypoints - origin[..., None, :]
    x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
    return x.flatten(-2)


class MappingMLP(nn.Module):
    """(N, K*3) centred keypoints -> (N, 17*3) joints relative to the same origin.

    Two hidden ReLU layers plus a linear skip path: the linear part carries what ridge already explains
    (joints as blends of nearby keypoints), the hidden layers learn the non-linear rest, which keeps the
    fit stable with 1 % labels.
    """

    def __init__(self, num_keypoints: int, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(3 * num_keypoints, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 3 * NUM_JOINTS),
        )
        self.skip = nn.Linear(3 * num_keypoints, 3 * NUM_JOINTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.skip(x)


def check_mapping(mapping: dict, num_keypoints: int) -> None:
    """Raise ValueError unless ``mapping`` is a kp3d mapping entry fitted for ``num_keypoints`` keypoints (at start-up,
    not on every frame)."""
    try:
        models = mapping["models"]
        k = {int(m["num_keypoints"]) for m in models.values()}
        default = mapping["default"]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("mapping: not a kp3d mapping entry (needs 'default' and 'models' with num_keypoints)") from None
    if default not in models:
        raise ValueError(f"mapping: default {default!r} not among its models {sorted(models)}")
    if k != {num_keypoints}:
        raise ValueError(f"mapping: fitted for {sorted(k)} keypoints but the network gives {num_keypoints}")


def identity_mapping(num_keypoints: int = NUM_JOINTS, info: dict | None = None) -> dict:
    """A mapping entry that passes keypoints through as joints (keypoint k = joint k).

    For a network whose keypoints are the named joints: trained with ground-truth joints (the supervised upper
    bound) or a skeleton model (Mask as Supervision, :func:`checkpoint_mapping`); no fit, no labels used.
    """
    if num_keypoints != NUM_JOINTS:
        raise ValueError(f"identity mapping needs {NUM_JOINTS} keypoints, got {num_keypoints}")
    entry = {"kind": "linear", "num_keypoints": NUM_JOINTS, "root": -1, "up": [0.0, 0.0, 1.0],
             "weight": torch.eye(3 * NUM_JOINTS), "bias": torch.zeros(3 * NUM_JOINTS)}
    return {"default": "identity", "models": {"identity": entry}, "fraction": 0.0, "num_frames": 0, **(info or {})}


NAMED_JOINTS_MAPPING = "identity (named joints, no labels)"
"""The ``name`` of the identity mapping :func:`checkpoint_mapping` gives a skeleton model (what ``kp3d eval`` reports)."""


def is_skeleton_model(config: dict) -> bool:
    """Whether a checkpoint's stored config dict (``ckpt["config"]``) describes a skeleton-mode model: 17 keypoints
    trained with a Mask-as-Supervision pixel term (``loss.skeleton`` or ``loss.physique`` > 0), so that keypoint k is
    the joint ``skeleton.JOINT_NAMES[k]``. Reads the plain dict (no training module)."""
    if not isinstance(config, dict):
        return False
    model, loss = config.get("model") or {}, config.get("loss") or {}
    return (int(model.get("num_keypoints", 0)) == NUM_JOINTS
            and (float(loss.get("skeleton", 0.0)) > 0 or float(loss.get("physique", 0.0)) > 0))


SUPERVISED_MAPPING = "identity (supervised: keypoint k is joint k)"
"""The ``name`` of the identity mapping :func:`checkpoint_mapping` gives a supervised model (the upper bound)."""


def is_supervised_model(config: dict) -> bool:
    """Whether a stored config dict describes a model trained on ground-truth joints (``--supervised``, 17
    keypoints, keypoint k = joint k)."""
    if not isinstance(config, dict):
        return False
    return (int((config.get("model") or {}).get("num_keypoints", 0)) == NUM_JOINTS
            and bool((config.get("train") or {}).get("supervised", False)))


def checkpoint_mapping(ckpt: dict) -> dict | None:
    """The mapping a checkpoint's keypoints go through: its fitted ``mapping`` entry when it has one, else for a
    skeleton model (:func:`is_skeleton_model`) the identity (keypoint k = joint k, no labels, named
    :data:`NAMED_JOINTS_MAPPING`), for a supervised one the identity named :data:`SUPERVISED_MAPPING`, else None
    (no pose without ``kp3d map``)."""
    if ckpt.get("mapping"):
        return ckpt["mapping"]
    if is_skeleton_model(ckpt.get("config")):
        return identity_mapping(info={"name": NAMED_JOINTS_MAPPING})
    if is_supervised_model(ckpt.get("config")):
        return identity_mapping(info={"name": SUPERVISED_MAPPING})
    return None


def named_joints(mapping: dict | None) -> bool:
    """Whether the keypoints are themselves the 17 named joints (the identity of a skeleton model)."""
    return mapping is not None and mapping.get("name") == NAMED_JOINTS_MAPPING


def describe_mapping(mapping: dict | None) -> str:
    """One line on where ``~/pose`` comes from (the node's start-up log): the named joints of a skeleton model, a
    mapping fitted on labelled frames, or none (no pose until ``kp3d map``)."""
    if mapping is None:
        return "no mapping: ~/pose stays empty (fit one with `kp3d map`, or train a skeleton model)"
    if named_joints(mapping):
        return f"17 named joints of a skeleton model, {NAMED_JOINTS_MAPPING}"
    if mapping.get("name") == SUPERVISED_MAPPING:
        return f"17 joints of a supervised model, {SUPERVISED_MAPPING}"
    frames = int(mapping.get("num_frames", 0))
    return (f"mapping '{mapping.get('default')}' fitted on {frames} labelled frames "
            f"({100 * float(mapping.get('fraction', 0.0)):.3g} % of its data)")


def apply_mapping(mapping: dict, keypoints3d, kind: str | None = None):
    """Discovered keypoints -> 17 joints with a stored mapping.

    Args:
        mapping: the checkpoint's ``mapping`` entry (from :func:`fit_mapping`).
        keypoints3d: (..., K, 3) world metres, NaN for invalid keypoints (NumPy or torch).
        kind: 'linear' or 'mlp' (default: the entry's ``default``).
    Returns:
        (..., 17, 3) world metres, same type as the input; NaN where no keypoint was valid.
    """
    if "models" not in mapping:
        raise ValueError("mapping: field 'models' missing (not a kp3d mapping entry)")
    kind = kind or mapping["default"]
    if kind not in mapping["models"]:
        raise ValueError(f"mapping: no '{kind}' model (available: {sorted(mapping['models'])})")
    m = mapping["models"][kind]
    is_numpy = not isinstance(keypoints3d, torch.Tensor)
    X = torch.as_tensor(np.asarray(keypoints3d, dtype=np.float32)) if is_numpy else keypoints3d
    K = int(m["num_keypoints"])
    if X.ndim < 2 or tuple(X.shape[-2:]) != (K, 3):
        raise ValueError(f"keypoints3d: expected (..., {K}, 3), got {tuple(X.shape)}")
    origin = root_origin(X, int(m["root"]))
    feats = centred_features(X, origin)
    if m["kind"] == "linear":
        out = feats @ m["weight"].to(feats) + m["bias"].to(feats)
    elif m["kind"] == "mlp":
        net = _mlp_cache(m, feats.dtype)
        with torch.set_grad_enabled(feats.requires_grad):
            out = net(feats.reshape(-1, feats.shape[-1])).reshape(*feats.shape[:-1], -1)
    else:
        raise ValueError(f"mapping: unknown model kind {m['kind']!r}")
    joints = out.reshape(*out.shape[:-1], NUM_JOINTS, 3) + origin[..., None, :]
    return joints.detach().numpy() if is_numpy else joints


class _MeanOfMLPs(nn.Module):
    """The stored MLP map at inference: the mean of its members' outputs."""

    def __init__(self, nets: list[MappingMLP]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return torch.stack([net(x) for net in self.nets]).mean(0)
        # eval (how it is used): MappingMLP.forward's operations called directly (dropout is the identity),
        # without 9 module calls per member (half the mapping's time per frame); the same numbers
        outs = []
        for net in self.nets:
            l1, l2, l3 = net.net[0], net.net[3], net.net[6]
            h = F.relu(F.linear(F.relu(F.linear(x, l1.weight, l1.bias)), l2.weight, l2.bias))
            outs.append(F.linear(h, l3.weight, l3.bias) + F.linear(x, net.skip.weight, net.skip.bias))
        return torch.stack(outs).mean(0)


def _mlp_cache(entry: dict, dtype: torch.dtype = torch.float32) -> _MeanOfMLPs:
    """The eval-mode MLP map of a stored entry in ``dtype``, built once per entry and dtype (converting a module
    walks all its parameters: ~1 ms, too much for every frame)."""
    cache = entry.setdefault("_modules", {})  # not saved: save_mapping stores only plain entries
    net = cache.get(dtype)
    if net is None:
        members = entry["members"] if "members" in entry else [entry]  # entries before 2026-12-02: one MLP
        nets = []
        for member in members:
            m = MappingMLP(int(entry["num_keypoints"]), int(entry["hidden"]))
            m.load_state_dict(member["state"])
            nets.append(m)
        net = cache[dtype] = _MeanOfMLPs(nets).eval().to(dtype)
    return net


def plain_mapping(mapping: dict) -> dict:
    """The mapping without cached modules (what goes into a checkpoint)."""
    return {
        **{k: v for k, v in mapping.items() if k != "models"},
        "models": {k: {kk: vv for kk, vv in m.items() if not kk.startswith("_")} for k, m in mapping["models"].items()},
    }
