"""Loss terms of Mask as Supervision (Yang, Qiao, Sun; seed 002): named joints from a label-free silhouette.

The model's 17 keypoints are the joints of :mod:`kp3d_core.skeleton`; their reprojections x^ are drawn as a
skeleton mask (:mod:`kp3d_core.skeleton_mask`, in :class:`kp3d_core.models.skeleton_head.SkeletonHead`) and
compared with the soft |I - B| foreground of each view (``batch['fg']``, background subtraction: never a true mask):

* ``skeleton``: the skeleton must not lie outside the silhouette (one-sided: a thin skeleton cannot fill it);
* ``physique``: a small U-Net turns the skeleton into a silhouette that must match the foreground, which pulls the
  bones to cover the body;
* ``symmetry``: each left bone as long as its right twin, on the triangulated 3D joints.

Pixel terms can be weighted by :func:`kp3d_core.geodesic.geodesic_weights`. The cascade (:mod:`kp3d_core.cascade`)
decides which bones and terms are on. Shapes: B frames, V views, h map side; masks (B, V, 1, h, h) in [0, 1].
"""
from __future__ import annotations

import torch

from .geodesic import geodesic_weights
from .skeleton import BONES, FLIP_PERMUTATION, LEFT_RIGHT_PAIRS
from .skeleton_mask import ARM_JOINTS

_LEFT = frozenset(left for left, _ in LEFT_RIGHT_PAIRS)
SYMMETRIC_BONES: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = tuple(
    ((p, c), (FLIP_PERMUTATION[p], FLIP_PERMUTATION[c])) for p, c in BONES if c in _LEFT
)
"""(left bone, right bone) pairs of joint indices: hips, thighs, shins, shoulders, upper arms, forearms (6)."""


def pixel_weights(fg: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, V, 1, h, h) geodesic weights of the soft foreground ``fg`` (same shape), on its device, no gradient.

    Computed on the CPU with NumPy/scikit-fmm (about 0.2 ms per 32 x 32 map, :mod:`kp3d_core.geodesic`)."""
    flat = fg.detach().reshape(-1, *fg.shape[-2:]).float().cpu().numpy()
    w = torch.from_numpy(geodesic_weights(flat, threshold))
    return w.reshape(fg.shape).to(fg.device, fg.dtype)


def _weighted_mean(err: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """(B, V, 1, h, h) -> (B, V) mean over pixels, weighted when ``weights`` is given."""
    if weights is None:
        return err.mean(dim=(2, 3, 4))
    return (err * weights).sum(dim=(2, 3, 4)) / weights.sum(dim=(2, 3, 4)).clamp_min(1e-6)


def skeleton_outside_loss(skeleton: torch.Tensor, fg: torch.Tensor, weights: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """(B, V) mean of (skeleton * (1 - fg))^2: skeleton drawn where the foreground is not.

    Args: skeleton, fg (B, V, 1, h, h) in [0, 1]; weights (B, V, 1, h, h) or None.
    Inside the silhouette the skeleton is free: its thin lines cannot fill it, and the physique term does that.
    """
    return _weighted_mean((skeleton * (1.0 - fg)).pow(2), weights)


def physique_loss(physique: torch.Tensor, fg: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, V) mean squared difference between the physique net's silhouette and the foreground (B, V, 1, h, h)."""
    return _weighted_mean((physique - fg).pow(2), weights)


def symmetric_bones(arms: bool = True) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
    """:data:`SYMMETRIC_BONES`, without the upper arms and forearms unless ``arms``."""
    return tuple(pair for pair in SYMMETRIC_BONES if arms or pair[0][1] not in ARM_JOINTS)


def symmetry_loss(X: torch.Tensor, valid: torch.Tensor, arms: bool = True) -> torch.Tensor:
    """Scalar mean over frames and bone pairs of |length(left bone) - length(right bone)|, metres.

    Args: X (B, 17, 3) metres; valid (B, 17) bool: a pair counts where its four joints are valid.
    L1, so that a pair far from symmetric (a joint on the wrong limb) pulls no harder than a near one.
    """
    pairs = symmetric_bones(arms)
    left = torch.tensor([lb for lb, _ in pairs], device=X.device)  # (P, 2)
    right = torch.tensor([rb for _, rb in pairs], device=X.device)

    def lengths(b: torch.Tensor) -> torch.Tensor:
        # + eps under the root: a finite gradient where a bone has length 0 (two joints triangulated together)
        return ((X[:, b[:, 1]] - X[:, b[:, 0]]).pow(2).sum(-1) + 1e-12).sqrt()  # (B, P)

    ok = valid[:, left].all(-1) & valid[:, right].all(-1)  # (B, P)
    w = ok.to(X.dtype)
    return ((lengths(left) - lengths(right)).abs() * w).sum() / w.sum().clamp_min(1.0)
