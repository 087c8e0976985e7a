"""Training the single-view lifter from the rig's own geometry (``kp3d lift``, ``kp3d bench lift``).

:mod:`.tracks` runs the multi-view estimator over recordings and keeps each view's keypoints beside the
triangulated ones (the pseudo-labels); :mod:`.fit` trains :class:`~kp3d_core.models.lifter.LifterNet` on them with
Chen et al.'s rotation cycle and 2D pose discriminator; :mod:`.cli` is ``kp3d lift``. The run-time half is
:mod:`kp3d_core.inference.single_view`.
"""
