"""Losses of unsupervised multi-view keypoint discovery, each a small function, switchable by weight.

From Honari & Fua (seeds 000/001): reconstruction, mask, coverage, centering. The paper's mask term compares
the mask drawn from the keypoints with the subject mask the model estimated without labels: here the soft
|I - B| foreground (``mask_to_fg``); ``mask`` compares it with the decoder's M, which kp3d's decoder draws from
the keypoints. Additions (REFERENCE section 5, a prototype's lessons): ``fill`` and ``separation`` fix the
collapse of all keypoints onto the pelvis; coverage/fill are driven by the soft |I - B| foreground rather than
the decoder's own mask (which dropped the arms); foreground pixels are weighted 5x in the reconstruction;
``mask``, ``consistency``, ``thin_fill`` (fill on the thin parts alone) and ``temporal`` (a keypoint keeps its part
over time) are further additions. ``skeleton``, ``physique`` and ``symmetry`` are Mask as Supervision's (seed 002,
:mod:`kp3d_core.mas`), with two posture priors of ours, ``upright`` and ``width``, for a model whose 17 keypoints are
the named joints. ``supervised_loss`` is the
upper bound's loss (labels); ``distillation_loss`` holds a fine-tuned net's keypoints near those of the net it started
from (``kp3d adapt``, no labels).

Shapes: B frames, V views, K keypoints, S crop side; every per-view term is averaged over valid views
only (``valid_view``). Keypoint distances are in fractions of the crop side, 3D in metres.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import mas
from .cascade import Stage
from .config import LossConfig
from .render_keypoints import cell_centres, render_mask


def _view_mean(per_view: torch.Tensor, valid_view: torch.Tensor) -> torch.Tensor:
    """(B, V) values -> mean over valid views (0 if none)."""
    w = valid_view.to(per_view.dtype)
    return (per_view * w).sum() / w.sum().clamp_min(1.0)


def reconstruction_loss(image: torch.Tensor, recon: torch.Tensor, fg: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """(B, V) foreground-weighted L1 between image and reconstruction.

    Args: image, recon (B, V, 3, S, S) in [0, 1]; fg (B, V, 1, S, S) soft foreground in [0, 1].
    Pixel weights 1 + (fg_weight - 1) * fg: the body is a small part of the crop, and without the
    extra weight a reconstruction that drops thin limbs costs almost nothing.
    """
    w = 1.0 + (fg_weight - 1.0) * fg
    return ((recon - image).abs() * w).mean(dim=(2, 3, 4)) / w.mean(dim=(2, 3, 4))


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(image: torch.Tensor, recon: torch.Tensor, fg: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """(B, V) structural term: L1 between the finite-difference image gradients of image and reconstruction.

    Why this term: the paper adds a perceptual loss on features of a pretrained ResNet, but no pretrained
    ImageNet weights can be downloaded here, and features of a randomly initialised net carry no
    perceptual prior. A pixel loss alone is satisfied by a blurred silhouette; the gradient term pays
    only for edges (silhouette outline, limb borders, clothing boundaries) in the right place, which
    is the information keypoints must carry. It has no parameters and costs two subtractions, unlike
    SSIM, whose local statistics add little over edges for the flat-shaded bodies of the studio.
    Weighted like the reconstruction (foreground edges count ``fg_weight`` times).
    """
    gx_i, gy_i = _gradients(image)
    gx_r, gy_r = _gradients(recon)
    w = 1.0 + (fg_weight - 1.0) * fg
    wx, wy = torch.maximum(w[..., :, 1:], w[..., :, :-1]), torch.maximum(w[..., 1:, :], w[..., :-1, :])
    lx = ((gx_r - gx_i).abs() * wx).mean(dim=(2, 3, 4)) / wx.mean(dim=(2, 3, 4))
    ly = ((gy_r - gy_i).abs() * wy).mean(dim=(2, 3, 4)) / wy.mean(dim=(2, 3, 4))
    return 0.5 * (lx + ly)


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, V, C, S, S) -> (B, V, C, size, size) by area averaging."""
    B, V = x.shape[:2]
    y = F.adaptive_avg_pool2d(x.reshape(B * V, *x.shape[2:]), size)
    return y.reshape(B, V, *y.shape[1:])


def mask_loss(rendered: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, V) mean squared difference between the rendered keypoint mask and a target mask (B, V, 1, h, w)."""
    return (rendered - target).pow(2).mean(dim=(2, 3, 4))


def coverage_loss(probs: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """(B, V) mean over keypoints of 1 - (heatmap mass on the foreground).

    Args: probs (B, V, K, h, w) normalised heatmaps; fg (B, V, 1, h, w) soft foreground in [0, 1].
    """
    return (1.0 - (probs * fg).sum(dim=(3, 4))).mean(dim=2)


def foreground_centroid(fg: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(B, V, 2) crop px: the centroid of the soft foreground ``fg`` (B, V, 1, S', S') of each view (any S')."""
    coords = cell_centres(fg.shape[-1], crop_size, fg.device, fg.dtype)
    mass = fg.sum(dim=(2, 3, 4)).clamp_min(1e-6)
    cx = (fg.sum(dim=(2, 3)) * coords).sum(-1) / mass
    cy = (fg.sum(dim=(2, 4)) * coords).sum(-1) / mass
    return torch.stack([cx, cy], dim=-1)


def centering_loss(kp_hat: torch.Tensor, crop_size: int, centre: torch.Tensor) -> torch.Tensor:
    """(B, V) L1 distance (fraction of S) between the mean reprojected keypoint and the subject's centre u.

    ``centre`` (B, V, 2) crop px: the foreground's centroid (:func:`foreground_centroid`), a centre that one
    outstretched limb drags less than it drags the crop box's centre.
    """
    return (kp_hat.mean(dim=2) - centre.to(kp_hat.dtype)).abs().sum(dim=-1) / crop_size


def fill_loss(rendered: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """(B, V) fraction of the soft foreground not covered by the rendered keypoint mask (addition).

    One-sided: keypoints anywhere on the body are free, but every part of the body must be near one,
    which is what spreads them from the pelvis to the limbs.
    """
    return (fg * (1.0 - rendered)).sum(dim=(2, 3, 4)) / fg.sum(dim=(2, 3, 4)).clamp_min(1e-3)


def thin_parts(fg: torch.Tensor, kernel: int) -> torch.Tensor:
    """(B, V, 1, S, S) the parts of the soft foreground narrower than ``kernel`` px: fg minus its opening.

    A grey-level opening (erosion then dilation, both by max-pooling) keeps only what a kernel x kernel
    square fits inside. At 64 px crops an arm is ~2 px wide: kernel 3 removes the arms (and ragged bits of
    the soft outline), kernel 5 the shins and much of the legs too. The plain fill loss weighs an arm at a
    few percent of the body; filling these parts alone makes an uncovered arm cost as much as the trunk.
    """
    B, V = fg.shape[:2]
    x = fg.reshape(B * V, *fg.shape[2:])
    pad = kernel // 2
    eroded = -F.max_pool2d(-x, kernel, stride=1, padding=pad)
    opened = F.max_pool2d(eroded, kernel, stride=1, padding=pad)
    return (x - opened).clamp_min(0.0).reshape(fg.shape)


def separation_loss(X: torch.Tensor, valid: torch.Tensor, sigma_m: float) -> torch.Tensor:
    """Scalar mean over keypoint pairs of exp(-|X_k - X_l|^2 / (2 sigma^2)) (addition; 3D prior).

    Args: X (B, K, 3) metres; valid (B, K) bool.
    """
    K = X.shape[1]
    d2 = (X.unsqueeze(2) - X.unsqueeze(1)).pow(2).sum(-1)  # (B, K, K)
    kern = torch.exp(-d2 / (2 * sigma_m**2))
    pair = valid.unsqueeze(2) & valid.unsqueeze(1) & ~torch.eye(K, dtype=torch.bool, device=X.device)
    w = pair.to(X.dtype)
    return (kern * w).sum() / w.sum().clamp_min(1.0)


def temporal_loss(X: torch.Tensor, valid: torch.Tensor, eps_m: float = 0.01, length: int = 2) -> torch.Tensor:
    """Scalar mean over keypoints of the Charbonnier penalty sqrt(|D|^2 + eps^2) - eps of D, each keypoint's finite difference of order ``length - 1`` over its temporal window: its move between two frames
    (length 2), or its second difference x(t - d) - 2 x(t) + x(t + d) over three (length 3). Each frame's keypoints are
    centred on their mean first (so walking across the room costs nothing).

    Args: X (L * P, K, 3) metres, window i at rows L * i ... L * i + L - 1 in time order (kp3d_core.data.pairs);
    valid (L * P, K) bool. Only keypoints valid in every frame of their window count, and the centres are taken
    over those.
    """
    P = X.shape[0] // length
    Xw, vw = X.reshape(P, length, *X.shape[1:]), valid.reshape(P, length, -1)
    every = vw.all(1)  # (P, K)
    w = every.to(X.dtype)[:, None, :, None]
    centres = (Xw * w).sum(2, keepdim=True) / w.sum(2, keepdim=True).clamp_min(1.0)
    d2 = torch.diff(Xw - centres, n=length - 1, dim=1)[:, 0].pow(2).sum(-1)  # (P, K) squared metres
    rho = torch.sqrt(d2 + eps_m**2) - eps_m
    return (rho * every.to(X.dtype)).sum() / every.sum().clamp_min(1)


def consistency_loss(kp: torch.Tensor, kp_hat: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(B, V) mean L1 (fraction of S) between detected and reprojected keypoints."""
    return (kp - kp_hat).abs().sum(-1).mean(-1) / crop_size


def distillation_loss(kp: torch.Tensor, kp_teacher: torch.Tensor, conf_teacher: torch.Tensor,
                      valid_view: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Scalar L1 (fraction of S) between keypoints and a frozen teacher's on the same crops, weighted by the teacher's
    confidence (label-free; fine-tuning with ``kp3d adapt``).

    Args: kp, kp_teacher (B, V, K, 2) crop px; conf_teacher (B, V, K) in [0, 1]; valid_view (B, V).
    Zero while the student is the teacher. L1, so the pull towards the teacher is bounded: a keypoint the new
    recording's losses push hard enough still moves, while an identity swap (a keypoint jumping to another limb)
    costs in proportion to the jump.
    """
    w = conf_teacher.to(kp.dtype) * valid_view.to(kp.dtype).unsqueeze(-1)
    err = (kp - kp_teacher.to(kp.dtype)).abs().sum(-1) / crop_size
    return (err * w).sum() / w.sum().clamp_min(1e-6)


def supervised_loss(kp: torch.Tensor, joints2d_crop: torch.Tensor, visible: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Scalar L1 (fraction of S) between 2D keypoints and true 2D joints over visible joints (labels).

    Args: kp (B, V, 17, 2) crop px; joints2d_crop (B, V, 17, 2) crop px (NaN unlabelled); visible (B, V, 17).
    """
    ok = visible.to(torch.bool) & torch.isfinite(joints2d_crop).all(-1)
    target = torch.where(ok.unsqueeze(-1), joints2d_crop.to(kp.dtype), kp.detach())
    err = (kp - target).abs().sum(-1) / crop_size
    w = ok.to(kp.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def unsupervised_losses(out: dict, batch: dict, cfg: LossConfig, crop_size: int, stage: Stage = Stage()
                        ) -> dict[str, torch.Tensor]:
    """All enabled unsupervised terms (weight > 0) as unweighted scalars, keyed by their config name.

    ``out`` is :meth:`DiscoveryModel.forward`'s dict; ``batch`` the training-sample batch; ``stage`` the MaS
    cascade's stage (:func:`kp3d_core.cascade.cascade_stage`), which leaves out the physique term before its step.
    Use :func:`total_loss` to combine them with the weights.
    """
    valid_view = batch["valid_view"].to(torch.bool)
    fg = batch["fg"].to(out["kp"].dtype)
    terms: dict[str, torch.Tensor] = {}
    if "recon" in out:
        if cfg.reconstruction > 0:
            terms["reconstruction"] = _view_mean(reconstruction_loss(batch["image"], out["recon"], fg, cfg.foreground_weight), valid_view)
        if cfg.structure > 0:
            terms["structure"] = _view_mean(gradient_loss(batch["image"], out["recon"], fg, cfg.foreground_weight), valid_view)
    h = out["probs"].shape[-1]
    fg_h = downsample(fg, h)
    need_render = cfg.mask > 0 or cfg.mask_to_fg > 0 or cfg.fill > 0 or cfg.thin_fill > 0
    if need_render:
        B, V, K = out["kp_hat"].shape[:3]
        rendered = render_mask(out["kp_hat"].reshape(B * V, K, 2), h, crop_size, cfg.render_sigma * crop_size)
        rendered = rendered.reshape(B, V, 1, h, h)
        if cfg.mask > 0 and "mask" in out:
            terms["mask"] = _view_mean(mask_loss(rendered, downsample(out["mask"], h)), valid_view)
        if cfg.mask_to_fg > 0:
            terms["mask_to_fg"] = _view_mean(mask_loss(rendered, fg_h), valid_view)
        if cfg.fill > 0:
            terms["fill"] = _view_mean(fill_loss(rendered, fg_h), valid_view)
        if cfg.thin_fill > 0:
            thin_h = downsample(thin_parts(fg, cfg.thin_kernel), h)
            terms["thin_fill"] = _view_mean(fill_loss(rendered, thin_h), valid_view)
    if cfg.coverage > 0:
        terms["coverage"] = _view_mean(coverage_loss(out["probs"], fg_h), valid_view)
    if cfg.centering > 0:
        centre = foreground_centroid(fg, crop_size)
        terms["centering"] = _view_mean(centering_loss(out["kp_hat"], crop_size, centre), valid_view)
    if cfg.separation > 0:
        terms["separation"] = separation_loss(out["X"], out["valid"], cfg.separation_sigma_m)
    valid_kp = out["valid"].to(torch.bool)
    if cfg.temporal > 0:
        if batch.get("temporal_window") != cfg.temporal_order + 1:
            raise ValueError(f"loss.temporal: the batch is not made of temporal windows of {cfg.temporal_order + 1} "
                             "frames (loss.temporal_order + 1; kp3d_core.data.pairs.flatten_windows)")
        terms["temporal"] = temporal_loss(out["X"], valid_kp, length=cfg.temporal_order + 1)
    if cfg.consistency > 0:
        terms["consistency"] = _view_mean(consistency_loss(out["kp"], out["kp_hat"], crop_size), valid_view)
    terms.update(mas_terms(out, fg, valid_view, cfg, stage))
    return terms


def mas_terms(out: dict, fg: torch.Tensor, valid_view: torch.Tensor, cfg: LossConfig, stage: Stage
              ) -> dict[str, torch.Tensor]:
    """The enabled Mask-as-Supervision terms (:mod:`kp3d_core.mas`): skeleton, physique (from its cascade step),
    symmetry, upright, width, hinges, proportions. ``fg`` (B, V, 1, S, S) the soft foreground; the masks are compared at the skeleton's side h."""
    terms: dict[str, torch.Tensor] = {}
    pixel_terms = cfg.skeleton > 0 or (cfg.physique > 0 and stage.physique)
    if pixel_terms:
        if "skeleton" not in out:
            raise ValueError("loss.skeleton / loss.physique: the model has no skeleton head (build it with "
                             "SkeletonHead.from_config, kp3d_core.train.build_model)")
        fg_h = downsample(fg, out["skeleton"].shape[-1])
        weights = mas.pixel_weights(fg_h, cfg.geodesic_threshold) if cfg.geodesic else None
        if cfg.skeleton > 0:
            terms["skeleton"] = _view_mean(mas.skeleton_loss(out["skeleton"], fg_h, weights), valid_view)
        if cfg.physique > 0 and stage.physique:
            if "physique" not in out:
                raise ValueError("loss.physique: the model ran no physique net (its stage was off in the forward)")
            terms["physique"] = _view_mean(mas.physique_loss(out["physique"], fg_h, weights), valid_view)
    if cfg.symmetry > 0:
        terms["symmetry"] = mas.symmetry_loss(out["X"], out["valid"].to(torch.bool), stage.arms)
    up = torch.tensor(cfg.upright_axis, dtype=out["X"].dtype, device=out["X"].device)
    if cfg.upright > 0:
        terms["upright"] = mas.upright_loss(out["X"], out["valid"].to(torch.bool), up, cfg.upright_margin_m)
    if cfg.width > 0:
        terms["width"] = mas.width_loss(out["X"], out["valid"].to(torch.bool), up)
    if cfg.hinges > 0:
        terms["hinges"] = mas.hinge_loss(out["X"], out["valid"].to(torch.bool), up, stage.arms)
    if cfg.proportions > 0:
        terms["proportions"] = mas.proportion_loss(out["X"], out["valid"].to(torch.bool), cfg.proportions_tolerance,
                                                   stage.arms)
    return terms


def total_loss(terms: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Weighted sum of the terms; each term's weight is the LossConfig field of the same name."""
    if not terms:
        raise ValueError("total_loss: every loss term is switched off (all weights 0)")
    return sum(getattr(cfg, name) * value for name, value in terms.items())
