"""The multi-view training model: keypoints per view -> 3D by weighted DLT -> reprojection -> decoder.

Chain (Honari & Fua; geometry in :mod:`kp3d_core.geometry`)::

    crops (B, V, 3, S, S) --KeypointNet--> x (B, V, K, 2) crop px, confidence (B, V, K)
    x --crop_to_image--> image px --undistort--> ideal px --triangulate(P, w=confidence)--> X (B, K, 3) m
    X --project(P)--> ideal px --distort--> image px --image_to_crop--> x_hat (B, V, K, 2) crop px
    x_hat --Decoder--> M, D;  I~ = M * D + (1 - M) * background
    x_hat --SkeletonHead--> skeleton mask (--PhysiqueNet--> silhouette)   (skeleton mode, Mask as Supervision)

Skeleton mode: with a :class:`~kp3d_core.models.skeleton_head.SkeletonHead` (``num_keypoints`` 17, keypoint k the
joint ``skeleton.JOINT_NAMES[k]``) the forward also draws each view's skeleton from x_hat (kp3d_core.mas).

The background crop is used only for the composite (never as an encoder input).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import crop, geometry
from ..cascade import Stage
from ..config import ModelConfig
from ..skeleton import NUM_JOINTS
from ..view_flips import flip_views, resolve_view_flips
from .decoder import Decoder
from .keypoint_net import KeypointNet, check_crops
from .skeleton_head import SkeletonHead


def crop_to_ideal(kp_crop: torch.Tensor, batch: dict) -> torch.Tensor:
    """(B, V, K, 2) crop px -> (B, V, K, 2) ideal (undistorted) image px of each view."""
    dt = kp_crop.dtype
    uv = crop.crop_to_image(kp_crop, batch["crop_to_image"].to(dt))
    return geometry.undistort_pixels(uv, batch["K"].to(dt), batch["dist"].to(dt))


def ideal_to_crop(uv_ideal: torch.Tensor, batch: dict) -> torch.Tensor:
    """(B, V, K, 2) ideal image px -> (B, V, K, 2) crop px (distortion applied first)."""
    dt = uv_ideal.dtype
    uv = geometry.distort_pixels(uv_ideal, batch["K"].to(dt), batch["dist"].to(dt))
    return crop.image_to_crop(uv, batch["crop_to_image"].to(dt))


class DiscoveryModel(nn.Module):
    """KeypointNet (exported) + Decoder and optional SkeletonHead (training only). ``forward(batch)`` returns a dict
    of outputs."""

    def __init__(self, cfg: ModelConfig, skeleton_head: SkeletonHead | None = None, view_flips: bool = False) -> None:
        super().__init__()
        if skeleton_head is not None and cfg.num_keypoints != NUM_JOINTS:
            raise ValueError(f"skeleton_head: needs num_keypoints {NUM_JOINTS} (the named joints), got "
                             f"{cfg.num_keypoints}")
        if view_flips and cfg.num_keypoints != NUM_JOINTS:
            raise ValueError(f"view_flips: needs num_keypoints {NUM_JOINTS} (the named joints), got {cfg.num_keypoints}")
        self.view_flips = view_flips  # loss.view_flips: triangulate each view in the majority's left/right labelling
        self.cfg = cfg
        self.keypoint_net = KeypointNet(cfg)
        self.decoder = Decoder(cfg)
        self.skeleton_head = skeleton_head  # None: no "skeleton_head.*" weights, the state_dict of before

    def forward(self, batch: dict, decode: bool = True, stage: Stage = Stage()) -> dict:
        """Run the full chain on a batch of the training-sample contract.

        Args:
            batch: ``image`` (B, V, 3, S, S), optional ``encoder_image`` (B, V, 3, S, S) the keypoint net sees
                instead (augmentation), ``background`` (B, V, 3, S, S), ``crop_to_image`` (B, V, 3, 3),
                ``K`` (B, V, 3, 3), ``dist`` (B, V, 5), ``P`` (B, V, 3, 4), ``valid_view`` (B, V).
            decode: run the decoder and the skeleton head (False for the supervised upper bound, which needs no
                reconstruction).
            stage: the MaS cascade's stage (arm bones drawn, physique net run); used by the skeleton head only.
        With ``view_flips`` (skeleton mode), the views whose left/right labels disagree with the others are swapped
        before triangulation (:func:`kp3d_core.view_flips.resolve_view_flips`): ``X`` and ``kp_hat`` are in the
        majority's labelling, ``kp`` and ``conf`` stay as the net gave them, and ``flips`` (B, V) bool says which.
        Returns:
            ``probs`` (B, V, K, h, w), ``kp`` (B, V, K, 2) crop px, ``conf`` (B, V, K), ``X`` (B, K, 3) m (NaN-free:
            invalid points are zeros), ``valid`` (B, K), ``kp_hat`` (B, V, K, 2) crop px and, with ``decode``,
            ``mask`` (B, V, 1, S, S), ``fg_image`` (B, V, 3, S, S), ``recon`` (B, V, 3, S, S); with ``decode`` and a
            skeleton head, ``skeleton`` (B, V, 1, h, h) and, when its physique net runs, ``physique`` (B, V, 1, h, h).
        """
        image = batch["image"]
        if image.dim() != 5:
            raise ValueError(f"batch['image']: expected shape (B, V, 3, S, S), got {tuple(image.shape)}")
        B, V = image.shape[:2]
        S = self.cfg.crop_size
        check_crops(image.reshape(B * V, *image.shape[2:]), S)
        seen = batch.get("encoder_image", image)  # the augmenter's background swap, else the crops themselves
        probs, kp, conf = self.keypoint_net.heatmaps(seen.reshape(B * V, 3, S, S))
        K = kp.shape[1]
        probs = probs.reshape(B, V, K, *probs.shape[-2:])
        kp, conf = kp.reshape(B, V, K, 2), conf.reshape(B, V, K)

        valid_view = batch["valid_view"].to(torch.bool).reshape(B, V, 1)
        uv = crop_to_ideal(kp, batch)
        weights = conf * valid_view.to(conf.dtype)
        P = batch["P"].to(kp.dtype)
        flips = None
        if self.view_flips:  # no gradient through the choice; the swapped views' keypoints still get theirs
            flips = resolve_view_flips(uv.detach(), weights.detach(), P)
            uv, weights = flip_views(uv, flips), flip_views(weights, flips)
        X, valid = geometry.triangulate(uv, weights, P)
        X = torch.where(valid.unsqueeze(-1), X, torch.zeros_like(X))
        kp_hat = ideal_to_crop(geometry.project(X, P), batch)
        out = {"probs": probs, "kp": kp, "conf": conf, "X": X, "valid": valid, "kp_hat": kp_hat}
        if flips is not None:
            out["flips"] = flips
        if decode:
            mask, fg_image = self.decoder(kp_hat.reshape(B * V, K, 2))
            mask = mask.reshape(B, V, 1, S, S)
            fg_image = fg_image.reshape(B, V, 3, S, S)
            out.update(mask=mask, fg_image=fg_image, recon=mask * fg_image + (1 - mask) * batch["background"])
        if decode and self.skeleton_head is not None:
            skel, physique = self.skeleton_head(kp_hat.reshape(B * V, K, 2), stage)
            out["skeleton"] = skel.reshape(B, V, *skel.shape[1:])
            if physique is not None:
                out["physique"] = physique.reshape(B, V, *physique.shape[1:])
        return out
