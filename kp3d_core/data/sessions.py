"""A data path -> its session folders: the one way training, ``kp3d eval`` and ``kp3d map`` read a split.

A split is either

- a plain studio dataset folder (``manifest.yaml`` without ``kind``, or ``kind: dataset``): one session, the folder
  itself, exactly as before sessions existed; or
- a sessions folder (``kind: sessions``, ``sessions: [name, ...]``): each ``<split>/<name>/`` a plain studio
  dataset folder with its own rig (3-8 cameras, image sizes of its own), ground truth and images
  (docs/interfaces.md, "Sessions folder").

Frames of a split are numbered across its sessions in manifest order (session 0's frames, then session 1's, ...):
:func:`split_indices` turns such split-wide frame indices into each session's own.

Example::

    split = read_split("out/studio-field/train")
    split.is_sessions                 # True (False for a plain studio folder)
    [s.name for s in split.sessions]  # ['s000', 's001', ...]; a plain folder: [its folder name]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml


class SplitError(ValueError):
    """A malformed split manifest (unknown ``kind``, a bad ``sessions`` list); the message names the manifest."""


KINDS = ("dataset", "sessions")
"""Values of a split manifest's ``kind``: a plain studio dataset folder (also when ``kind`` is absent) or sessions."""


@dataclass(frozen=True)
class Session:
    """One studio dataset folder of a split."""

    name: str
    """Its name in the split's manifest (a plain folder: the folder's own name)."""
    path: Path
    """The folder (``<split>/<name>`` or, for a plain folder, the split itself)."""


@dataclass(frozen=True)
class Split:
    """What a data path holds: its manifest and its session folders, in manifest order."""

    path: Path
    manifest: dict
    sessions: tuple[Session, ...]

    @property
    def is_sessions(self) -> bool:
        """True for a sessions folder; False for a plain studio folder (one session, the folder itself)."""
        return self.manifest.get("kind") == "sessions"


def read_manifest(path: str | Path) -> dict:
    """``path/manifest.yaml`` as a dict; FileNotFoundError naming the folder if it has none."""
    f = Path(path) / "manifest.yaml"
    if not f.is_file():
        raise FileNotFoundError(f"{Path(path)}: not a studio dataset or sessions folder (no manifest.yaml)")
    manifest = yaml.safe_load(f.read_text()) or {}
    if not isinstance(manifest, dict):
        raise SplitError(f"{f}: expected a mapping, got {type(manifest).__name__}")
    return manifest


def read_split(path: str | Path) -> Split:
    """The split at ``path``: a plain studio folder (one session) or a sessions folder (its listed sessions).

    Raises FileNotFoundError naming the folder when ``path`` has no manifest or a listed session folder (or its
    manifest.yaml) is missing (all missing ones in one message), and :class:`SplitError` naming the manifest when
    ``kind`` is unknown, ``sessions`` is not a non-empty list of distinct plain folder names, or a session is itself
    a sessions folder.
    """
    path = Path(path)
    manifest = read_manifest(path)
    kind = manifest.get("kind", "dataset")
    if kind not in KINDS:
        raise SplitError(f"{path / 'manifest.yaml'}: kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == "dataset":
        return Split(path, manifest, (Session(path.resolve().name, path),))
    names = manifest.get("sessions")
    where = path / "manifest.yaml"
    if not isinstance(names, list) or not names:
        raise SplitError(f"{where}: kind 'sessions' needs 'sessions', a non-empty list of session folder names, "
                         f"got {names!r}")
    bad = [n for n in names if not isinstance(n, str) or not n or n in (".", "..") or "/" in n or "\\" in n]
    if bad:
        raise SplitError(f"{where}: session names must be folder names inside {path}, got {bad}")
    if len(set(names)) != len(names):
        raise SplitError(f"{where}: session names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    missing = [path / n for n in names if not (path / n / "manifest.yaml").is_file()]
    if missing:
        raise FileNotFoundError(f"{where} lists session folder(s) that are missing or hold no manifest.yaml: "
                                f"{', '.join(str(m) for m in missing)}")
    nested = [n for n in names if read_manifest(path / n).get("kind") == "sessions"]
    if nested:
        raise SplitError(f"{where}: sessions must be studio dataset folders, not sessions folders: "
                         f"{', '.join(str(path / n) for n in nested)}")
    return Split(path, manifest, tuple(Session(n, path / n) for n in names))


def split_indices(indices, sizes) -> list[np.ndarray]:
    """Split-wide frame indices -> each session's own frame indices.

    Args: indices (N,) int, in [0, sum(sizes)), frames numbered across sessions in order; sizes (S,) frames per
    session. Returns S int64 arrays (possibly empty), the indices falling in each session minus its offset, in the
    given order. Example: ``split_indices([0, 4, 5], [4, 3]) == [array([0]), array([0, 1])]``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    if indices.size and (indices.min() < 0 or indices.max() >= (ends[-1] if ends.size else 0)):
        raise IndexError(f"split_indices: indices outside [0, {int(ends[-1]) if ends.size else 0})")
    which = np.searchsorted(ends, indices, side="right")
    starts = ends - np.asarray(sizes, dtype=np.int64)
    return [indices[which == s] - starts[s] for s in range(len(ends))]
