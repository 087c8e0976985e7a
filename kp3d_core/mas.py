"""Loss terms of Mask as Supervision (Yang, Qiao, Sun; seed 002): named joints from a label-free silhouette.

The model's 17 keypoints are the joints of :mod:`kp3d_core.skeleton`; their reprojections x^ are drawn as a
skeleton mask (:mod:`kp3d_core.skeleton_mask`, in :class:`kp3d_core.models.skeleton_head.SkeletonHead`) and
compared with the soft |I - B| foreground of each view (``batch['fg']``, background subtraction: never a true mask):

* ``skeleton``: the skeleton mask must match the silhouette, squared difference both inside and outside it (two-sided,
  as the paper's Eq. 5; outside alone lets the joints collapse, :func:`skeleton_loss`);
* ``physique``: a small U-Net turns the skeleton into a silhouette that must match the foreground, which pulls the
  bones to cover the body;
* ``symmetry``: each left bone as long as its right twin, on the triangulated 3D joints;
* ``upright``: down the trunk and each leg, a joint lies above the next one (world up, from the calibration): the
  only term that tells the head from the feet, so that a skeleton born scrambled unfolds the right way up;
* ``width``: the hips, and the shoulders, at least a body's minimum width apart in 3D: the only term that parts a
  left joint from its right twin when both start on the body's midline (the masks are symmetric there).
* ``hinges``: knees bend forward and elbows backward, forward being the facing the hips' left/right labels give: the
  only term that tells the body's left from its right (a skeleton and its mirror image draw the same masks, but the
  mirror's bent knees point backward).
* ``proportions``: each bone's share of the skeleton's mean bone length within a factor of a generic body's (the
  joints between a line's ends, e.g. the spine on the trunk, are otherwise free to slide along it).

Pixel terms can be weighted by :func:`kp3d_core.geodesic.geodesic_weights`. The cascade (:mod:`kp3d_core.cascade`)
decides which bones and terms are on. Shapes: B frames, V views, h map side; masks (B, V, 1, h, h) in [0, 1].
"""
from __future__ import annotations

import torch

from .geodesic import geodesic_weights
from .models.synthetic import _TEMPLATE
from .skeleton import BONES, FLIP_PERMUTATION, JOINT_INDEX, LEFT_RIGHT_PAIRS
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


def skeleton_loss(skeleton: torch.Tensor, fg: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, V) mean of (skeleton - fg)^2 (the paper's Eq. 5): drawn where the foreground is not, and missing where
    it is.

    Args: skeleton, fg (B, V, 1, h, h) in [0, 1]; weights (B, V, 1, h, h) or None.
    Two-sided: the inside half is what spreads the joints over the body. Outside alone (the authors' V2 code) is
    lowest for joints collapsed on the body's centre (measured on studio-bench-open crops against the true 2D joints,
    a diagnosis only: collapsed 0.00004, true 0.0072), so it shrinks the skeleton; two-sided, with the geodesic
    weights and thin lines (sigma 0.03 of the crop, 'max' union), the true joints score lowest of true, shrunk by
    half (0.0129), collapsed (0.0167), arms and legs swapped (0.0102) and scrambled (0.0147): 0.0080. Thicker lines
    (sigma 0.045 and up) turn it back towards the shrunk skeleton.
    """
    return _weighted_mean((skeleton - fg).pow(2), weights)


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


_J = JOINT_INDEX
UPRIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple((_J[a], _J[b]) for a, b in (
    ("head", "neck"), ("neck", "thorax"), ("thorax", "spine"), ("spine", "pelvis"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("pelvis", "left_knee"), ("pelvis", "right_knee"),
))
"""(upper, lower) joints of a standing body: down the trunk from the head, down each leg, and the pelvis above the
knees (which ties the trunk's order to the legs'). No arm pair: arms go anywhere."""


def upright_loss(X: torch.Tensor, valid: torch.Tensor, up: torch.Tensor, margin_m: float) -> torch.Tensor:
    """Scalar mean over frames and :data:`UPRIGHT_PAIRS` of relu(height(lower) - height(upper) + margin), metres.

    Args: X (B, 17, 3) world metres; valid (B, 17) bool (a pair counts where both joints are valid); up (3,) the
    world's up direction (unit or not); margin_m: how far above its lower joint an upper one must be to cost nothing.
    A posture prior, not a label: it holds for standing, walking, reaching, crouching; a handstand or a body lying
    down pays it (hinged, so by how far it breaks it). With the margin, joints piled on one point (a collapsed start)
    pay too, and the gradient orders them: head up, ankles down.
    """
    pairs = torch.tensor(UPRIGHT_PAIRS, device=X.device)
    u = up.to(X) / up.to(X).norm().clamp_min(1e-12)
    h = X @ u  # (B, 17) heights
    gap = torch.relu(h[:, pairs[:, 1]] - h[:, pairs[:, 0]] + margin_m)  # (B, P)
    w = (valid[:, pairs[:, 0]] & valid[:, pairs[:, 1]]).to(X.dtype)
    return (gap * w).sum() / w.sum().clamp_min(1.0)


WIDTH_PAIRS: tuple[tuple[int, int, float], ...] = (
    (_J["left_hip"], _J["right_hip"], 0.15),
    (_J["left_shoulder"], _J["right_shoulder"], 0.22),
)
"""(left, right, minimum distance in metres): hip joint centres are ~0.2 m apart and shoulder joints ~0.3 m in adults;
the minima sit below both, so that a true body pays nothing."""


def width_loss(X: torch.Tensor, valid: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Scalar mean over frames and :data:`WIDTH_PAIRS` of relu(minimum - horizontal |X_left - X_right|), metres.

    Args: X (B, 17, 3) world metres; valid (B, 17) bool (a pair counts where both joints are valid); up (3,) the
    world's up direction. Horizontal: the distance with its component along ``up`` removed, since twins stacked one
    above the other (a skeleton drawn as one vertical line, seen on real crops) are no wider than one joint.
    A hinge with a constant slope, unlike the Gaussian ``separation`` term whose push vanishes at distance 0: twins
    that start on one point (a collapsed start) are pushed apart along whatever small difference they have, and
    which way is the body's left is left to the views (``view_flips``) and the images.
    """
    pairs = torch.tensor([(a, b) for a, b, _ in WIDTH_PAIRS], device=X.device)
    minimum = torch.tensor([m for _, _, m in WIDTH_PAIRS], dtype=X.dtype, device=X.device)
    u = up.to(X) / up.to(X).norm().clamp_min(1e-12)
    diff = X[:, pairs[:, 0]] - X[:, pairs[:, 1]]  # (B, P, 3)
    diff = diff - (diff @ u)[..., None] * u
    d = (diff.pow(2).sum(-1) + 1e-12).sqrt()  # (B, P); + eps: finite at 0
    w = (valid[:, pairs[:, 0]] & valid[:, pairs[:, 1]]).to(X.dtype)
    return (torch.relu(minimum - d) * w).sum() / w.sum().clamp_min(1.0)


HINGES: tuple[tuple[int, int, int, float], ...] = (
    (_J["right_hip"], _J["right_knee"], _J["right_ankle"], 1.0),
    (_J["left_hip"], _J["left_knee"], _J["left_ankle"], 1.0),
    (_J["right_shoulder"], _J["right_elbow"], _J["right_wrist"], -1.0),
    (_J["left_shoulder"], _J["left_elbow"], _J["left_wrist"], -1.0),
)
"""(upper, middle, lower joint, sign): a knee (+1) lies in front of its hip-ankle line, an elbow (-1) behind its
shoulder-wrist line. On the studio's ground truth (studio-bench test, studio-field train; metres, bends over 3 cm):
every bent knee points forward (median 5-29 cm), elbows point backward in 88-100 % of frames."""

_MIN_HIP_SPAN_M = 0.1
"""Below this horizontal hip span the facing direction is scaled down (not normalised): twins that start together
give a weak cue instead of an unstable one."""


def hinge_loss(X: torch.Tensor, valid: torch.Tensor, up: torch.Tensor, arms: bool = True) -> torch.Tensor:
    """Scalar mean over frames and :data:`HINGES` of relu(-sign * offset . forward), metres.

    Args: X (B, 17, 3) world metres; valid (B, 17) bool (a limb counts where its three joints and both hips are
    valid); up (3,) the world's up direction; arms: include the elbows (the cascade's arm stage).
    Forward = up x (right hip - left hip), horizontal, divided by max(its length, 0.1 m); offset = the middle joint's
    offset from the line through the outer two. A straight limb costs nothing whichever way the body faces; a bent
    one costs by how far it bends the wrong way, which is what the mirror labelling (left and right swapped
    throughout) does to every bent knee. Anatomy, not labels.
    """
    hinges = HINGES if arms else HINGES[:2]
    idx = torch.tensor([h[:3] for h in hinges], device=X.device)  # (L, 3)
    sign = torch.tensor([h[3] for h in hinges], dtype=X.dtype, device=X.device)
    u = up.to(X) / up.to(X).norm().clamp_min(1e-12)
    r = X[:, _J["right_hip"]] - X[:, _J["left_hip"]]  # (B, 3)
    r = r - (r @ u)[:, None] * u
    fwd = torch.linalg.cross(u.expand_as(r), r, dim=-1)
    fwd = fwd / (fwd.pow(2).sum(-1, keepdim=True) + 1e-12).sqrt().clamp_min(_MIN_HIP_SPAN_M)
    a, m, b = X[:, idx[:, 0]], X[:, idx[:, 1]], X[:, idx[:, 2]]  # (B, L, 3)
    line = b - a
    line = line / (line.pow(2).sum(-1, keepdim=True) + 1e-12).sqrt()
    p = m - a
    offset = p - (p * line).sum(-1, keepdim=True) * line
    cost = torch.relu(-sign * (offset * fwd[:, None]).sum(-1))  # (B, L)
    hips = valid[:, _J["right_hip"]] & valid[:, _J["left_hip"]]
    w = (valid[:, idx[:, 0]] & valid[:, idx[:, 1]] & valid[:, idx[:, 2]] & hips[:, None]).to(X.dtype)
    return (cost * w).sum() / w.sum().clamp_min(1.0)


def _template_proportions() -> torch.Tensor:
    """(len(BONES),) each bone's length over the mean bone length of the generic standing body
    (:data:`kp3d_core.models.synthetic._TEMPLATE`, a 1.72 m adult)."""
    t = torch.as_tensor(_TEMPLATE, dtype=torch.float64)
    idx = torch.tensor(BONES)
    lengths = (t[idx[:, 0]] - t[idx[:, 1]]).norm(dim=-1)
    return lengths / lengths.mean()


BONE_PROPORTIONS = _template_proportions()
"""(16,) float64, each bone of :data:`kp3d_core.skeleton.BONES` as a share of the mean bone length, generic body."""


def proportion_loss(X: torch.Tensor, valid: torch.Tensor, tolerance: float = 0.35, arms: bool = True
                    ) -> torch.Tensor:
    """Scalar mean over frames and bones of relu(|log((share + 0.1) / (generic share + 0.1))| - log(1 + tolerance)).

    Args: X (B, 17, 3) world metres; valid (B, 17) bool (a frame counts where all its joints are valid, since the
    mean bone length needs them all); tolerance: how far (as a fraction) a share may stray from the generic body's
    for free (people differ); arms: include the arm bones (the cascade's arm stage). Scale-free, so it says nothing
    about the body's size, only how its lengths compare: a spine joint slid to the neck makes one trunk bone near 0
    and pays; a skeleton in proportion pays nothing.
    """
    keep = [i for i, (_, c) in enumerate(BONES) if arms or c not in ARM_JOINTS]
    idx = torch.tensor([BONES[i] for i in keep], device=X.device)
    lengths = (X[:, idx[:, 0]] - X[:, idx[:, 1]]).pow(2).sum(-1).add(1e-12).sqrt()  # (B, L)
    share = lengths / lengths.mean(-1, keepdim=True).clamp_min(1e-6)
    generic = BONE_PROPORTIONS[keep].to(X)
    generic = generic / generic.mean()
    # + 0.1 in both: a bone shrunk to nothing keeps a bounded, non-zero pull (the log alone would blow up at 0)
    cost = torch.relu(((share + 0.1) / (generic + 0.1)).log().abs() - torch.log1p(torch.tensor(tolerance)).to(X))
    w = valid.all(-1).to(X.dtype)  # (B,)
    return (cost.mean(-1) * w).sum() / w.sum().clamp_min(1.0)
