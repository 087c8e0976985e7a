"""The cascade of Mask as Supervision (seed 002): which MaS pieces are on at a training step.

Stage 1 (step < ``loss.physique_from_step`` and < ``loss.arms_from_step``): skeleton term on trunk, head and legs
only. Stage 2 (from ``physique_from_step``): the physique net and its term join, once the skeleton has settled.
Stage 3 (from ``arms_from_step``): the arm bones (elbows, wrists) are drawn and enter the symmetry term. The two
switches are independent; the paper's order is physique_from_step <= arms_from_step. Steps count optimiser steps
already taken (the first step is step 0), so ``arms_from_step: 1000`` runs steps 0-999 without arms. Example::

    stage = cascade_stage(step, cfg.loss)      # Stage(arms=False, physique=True)
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import LossConfig


@dataclass(frozen=True)
class Stage:
    """What the MaS terms include at one step; the default (everything on) is the final stage."""

    arms: bool = True
    """Draw the arm bones and count the arm bone pairs in the symmetry term."""
    physique: bool = True
    """Run the physique net and its term (when ``loss.physique`` > 0)."""


def cascade_stage(step: int | None, cfg: LossConfig) -> Stage:
    """The stage at optimiser step ``step`` (steps taken so far); None: the final stage (evaluation, tests)."""
    if step is None:
        return Stage()
    return Stage(arms=step >= cfg.arms_from_step, physique=cfg.physique > 0 and step >= cfg.physique_from_step)
