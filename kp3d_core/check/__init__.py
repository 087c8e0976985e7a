"""``kp3d check``: label-free quality figures of a recording, a verdict per camera and what to do (docs/check.md).

One job per module: :mod:`.figures` (pure functions over per-frame arrays), :mod:`.run` (the run-time estimator
over a bag, collecting those arrays), :mod:`.summary` (arrays -> figures), :mod:`.verdict` (limits -> ok / suspect
/ failing and advice), :mod:`.montage` (per-camera PNG strips) and :mod:`.cli` (the command).
"""
