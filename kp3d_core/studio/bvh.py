"""BVH motion capture files: a strict parser and vectorised forward kinematics.

Conventions handled (read from each file, nothing assumed per dataset):
- Rotation channels are applied in the order they are listed (``Zrotation Xrotation Yrotation``
  means ``R = Rz @ Rx @ Ry``, intrinsic), degrees; every joint has its own order.
- Position channels REPLACE the joint's OFFSET on the axes they name (Bandai-Namco gives every
  joint 6 channels; the classic layout, e.g. CMU, has them on the root only, where OFFSET is 0,
  so "replace" and "add" agree there).
- ``End Site`` blocks become extra joints named ``<parent>_End`` without channels, so that
  e.g. the top of the head in CMU files can be named in a joint map.

Positions come out in the file's own units and axes; `kp3d_core.studio.retarget` converts them.

Example::

    clip = load_bvh("131_01.bvh")
    xyz = clip.forward_kinematics()          # (T, J, 3) file units
    xyz30 = clip.forward_kinematics(times=np.arange(0, clip.duration, 1 / 30))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
_ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")


class BvhError(ValueError):
    """A BVH file that cannot be read; the message names the file and the line."""


@dataclass
class BvhClip:
    """One BVH file: the joint tree, the channel layout and the motion table.

    Attributes:
        path: the file read.
        names: (J,) joint names in file order (parents come before children); end sites are
            joints named ``<parent>_End`` with no channels.
        parents: (J,) int index of each joint's parent, -1 for a root.
        offsets: (J, 3) float64 OFFSET of each joint from its parent, file units.
        channels: per joint, the tuple of channel names in file order (may be empty).
        channel_index: per joint, the column of its first channel in `motion` (-1 if none).
        frame_time: seconds per frame.
        motion: (T, C) float64, one row per frame, C = total channel count.
    """

    path: Path
    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    channel_index: list[int]
    frame_time: float
    motion: np.ndarray
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {n: i for i, n in enumerate(self.names)}

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) * self.frame_time

    def index(self, name: str) -> int:
        """Index of the joint called `name`; KeyError naming the joint and the file otherwise."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{self.path}: no joint named {name!r}") from None

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame local rotation and translation of every joint.

        Returns:
            quats (T, J, 4) scipy (x, y, z, w) quaternions, identity for joints without rotation
            channels; trans (T, J, 3) file units, the OFFSET with position channels substituted.
        """
        T, J = self.num_frames, self.num_joints
        quats = np.zeros((T, J, 4))
        quats[..., 3] = 1.0
        trans = np.broadcast_to(self.offsets, (T, J, 3)).copy()
        for j, chans in enumerate(self.channels):
            c0 = self.channel_index[j]
            rot_axes, rot_cols = [], []
            for k, ch in enumerate(chans):
                if ch in _POSITION_CHANNELS:
                    trans[:, j, _POSITION_CHANNELS.index(ch)] = self.motion[:, c0 + k]
                else:
                    rot_axes.append(ch[0].upper())
                    rot_cols.append(c0 + k)
            if rot_axes:
                # Upper-case axes = intrinsic rotations, i.e. R = R_a1 @ R_a2 @ R_a3 (BVH order).
                rot = Rotation.from_euler("".join(rot_axes), self.motion[:, rot_cols], degrees=True)
                quats[:, j] = rot.as_quat()
        return quats, trans

    def forward_kinematics(self, times: np.ndarray | None = None,
                           return_rotations: bool = False):
        """Global joint positions for every frame, all frames at once per joint.

        Args:
            times: optional (N,) seconds from the first frame at which to evaluate the clip;
                local rotations are interpolated by slerp and translations linearly, so bone
                lengths stay exactly those of the file. Clamped to [0, duration].
            return_rotations: also return the global rotation matrices.

        Returns:
            positions (T|N, J, 3) file units and axes; with `return_rotations`, also
            rotations (T|N, J, 3, 3) mapping each joint's local frame to the file's world frame.
        """
        quats, trans = self.local_transforms()
        if times is not None:
            quats, trans = self._interpolate(quats, trans, np.asarray(times, dtype=np.float64))
        n = quats.shape[0]
        R_local = Rotation.from_quat(quats.reshape(-1, 4)).as_matrix().reshape(n, -1, 3, 3)
        R = np.empty_like(R_local)
        P = np.empty((n, self.num_joints, 3))
        for j, p in enumerate(self.parents):
            if p < 0:
                R[:, j] = R_local[:, j]
                P[:, j] = trans[:, j]
            else:
                R[:, j] = R[:, p] @ R_local[:, j]
                P[:, j] = P[:, p] + np.einsum("nab,nb->na", R[:, p], trans[:, j])
        return (P, R) if return_rotations else P

    def _interpolate(self, quats: np.ndarray, trans: np.ndarray, times: np.ndarray):
        if times.ndim != 1:
            raise ValueError(f"times must be 1-D seconds, got shape {times.shape}")
        T = self.num_frames
        key_t = np.arange(T) * self.frame_time
        t = np.clip(times, 0.0, key_t[-1])
        nearest = np.clip(np.rint(t / self.frame_time).astype(np.int64), 0, T - 1)
        if T == 1 or np.abs(key_t[nearest] - t).max() < 1e-3 * self.frame_time:
            # Output instants fall on frames (e.g. 120 -> 30 fps, or 30 -> 30 with the file's
            # rounded Frame Time): take the frames themselves.
            return quats[nearest], trans[nearest]
        out_q = np.empty((len(t), quats.shape[1], 4))
        for j in range(quats.shape[1]):
            out_q[:, j] = Slerp(key_t, Rotation.from_quat(quats[:, j]))(t).as_quat()
        out_t = np.empty((len(t), trans.shape[1], 3))
        for j in range(trans.shape[1]):
            for a in range(3):
                out_t[:, j, a] = np.interp(t, key_t, trans[:, j, a])
        return out_q, out_t


class _Tokens:
    """Whitespace tokens of the hierarchy part with their 1-based line numbers."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.items: list[tuple[str, int]] = []
        for ln, line in enumerate(lines, start=1):
            for tok in line.split():
                self.items.append((tok, ln))
        self.pos = 0
        self.last_line = len(lines)

    def error(self, msg: str, line: int | None = None) -> BvhError:
        return BvhError(f"{self.path}:{line if line is not None else self.line}: {msg}")

    @property
    def line(self) -> int:
        return self.items[self.pos][1] if self.pos < len(self.items) else self.last_line

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise self.error(f"unexpected end of file, expected {what}")
        tok = self.items[self.pos][0]
        self.pos += 1
        return tok

    def expect(self, word: str) -> None:
        line = self.line
        tok = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, found {tok!r}", line)

    def number(self, what: str, integer: bool = False) -> float:
        line = self.line
        tok = self.next(what)
        try:
            return int(tok) if integer else float(tok)
        except ValueError:
            raise self.error(f"expected {what}, found {tok!r}", line) from None


def _parse_joint(tok: _Tokens, name: str, parent: int, out: dict) -> None:
    """Parse ``{ OFFSET ... CHANNELS ... (JOINT ...)* (End Site {...})? }`` after a joint name."""
    j = len(out["names"])
    out["names"].append(name)
    out["parents"].append(parent)
    tok.expect("{")
    tok.expect("OFFSET")
    out["offsets"].append([tok.number("OFFSET x"), tok.number("OFFSET y"), tok.number("OFFSET z")])
    chans: tuple[str, ...] = ()
    if tok.peek() == "CHANNELS":
        tok.next("CHANNELS")
        line = tok.line
        n = int(tok.number("channel count", integer=True))
        if not 0 <= n <= 6:
            raise tok.error(f"joint {name!r}: channel count {n} not in 0..6", line)
        names = []
        for _ in range(n):
            line = tok.line
            ch = tok.next("channel name")
            if ch not in _POSITION_CHANNELS + _ROTATION_CHANNELS:
                raise tok.error(f"joint {name!r}: unknown channel {ch!r}", line)
            if ch in names:
                raise tok.error(f"joint {name!r}: channel {ch!r} listed twice", line)
            names.append(ch)
        chans = tuple(names)
    out["channels"].append(chans)
    out["channel_index"].append(out["num_channels"] if chans else -1)
    out["num_channels"] += len(chans)
    while True:
        line = tok.line
        word = tok.next("JOINT, End Site or '}'")
        if word == "}":
            return
        if word == "JOINT":
            child = tok.next("joint name")
            if child in out["names"]:
                raise tok.error(f"joint name {child!r} used twice", line)
            _parse_joint(tok, child, j, out)
        elif word == "End":
            tok.expect("Site")
            tok.expect("{")
            tok.expect("OFFSET")
            off = [tok.number("OFFSET x"), tok.number("OFFSET y"), tok.number("OFFSET z")]
            tok.expect("}")
            out["names"].append(f"{name}_End")
            out["parents"].append(j)
            out["offsets"].append(off)
            out["channels"].append(())
            out["channel_index"].append(-1)
        else:
            raise tok.error(f"joint {name!r}: expected JOINT, End Site or '}}', found {word!r}", line)


def load_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file.

    Raises:
        BvhError: with ``<file>:<line>: <what>`` for any syntax error (bad keyword, missing
            brace, non-numeric value, wrong number of values on a frame line, frame count).
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    motion_line = next((i for i, l in enumerate(lines) if l.strip() == "MOTION"), None)
    if motion_line is None:
        raise BvhError(f"{path}:{max(len(lines), 1)}: no MOTION section")
    tok = _Tokens(path, lines[:motion_line])
    tok.expect("HIERARCHY")
    out = {"names": [], "parents": [], "offsets": [], "channels": [], "channel_index": [],
           "num_channels": 0}
    while tok.peek() is not None:
        line = tok.line
        word = tok.next("ROOT")
        if word != "ROOT":
            raise tok.error(f"expected ROOT, found {word!r}", line)
        _parse_joint(tok, tok.next("root name"), -1, out)
    if not out["names"]:
        raise tok.error("HIERARCHY has no ROOT joint")

    frames, frame_time, first = _parse_motion_header(path, lines, motion_line)
    C = out["num_channels"]
    motion = _parse_frames(path, lines, first, frames, C)
    return BvhClip(path=path, names=out["names"], parents=np.asarray(out["parents"], dtype=np.int64),
                   offsets=np.asarray(out["offsets"], dtype=np.float64), channels=out["channels"],
                   channel_index=out["channel_index"], frame_time=frame_time, motion=motion)


def _parse_motion_header(path: Path, lines: list[str], motion_line: int) -> tuple[int, float, int]:
    """``Frames: N`` and ``Frame Time: dt`` after MOTION; returns (N, dt, index of first frame line)."""
    i = motion_line + 1
    values = {}
    for key in ("Frames:", "Frame Time:"):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            raise BvhError(f"{path}:{i}: unexpected end of file, expected {key!r}")
        text = lines[i].strip()
        if not text.startswith(key):
            raise BvhError(f"{path}:{i + 1}: expected {key!r}, found {text[:40]!r}")
        try:
            values[key] = float(text[len(key):].strip())
        except ValueError:
            raise BvhError(f"{path}:{i + 1}: {key} needs a number, found {text[len(key):].strip()!r}") from None
        i += 1
    frames, dt = values["Frames:"], values["Frame Time:"]
    if frames != int(frames) or frames < 1:
        raise BvhError(f"{path}:{motion_line + 2}: Frames must be a positive integer, got {frames}")
    if not dt > 0:
        raise BvhError(f"{path}:{i}: Frame Time must be positive, got {dt}")
    return int(frames), dt, i


def _parse_frames(path: Path, lines: list[str], first: int, frames: int, C: int) -> np.ndarray:
    rows = [(k, lines[k]) for k in range(first, len(lines)) if lines[k].strip()]
    if len(rows) != frames:
        where = rows[frames][0] + 1 if len(rows) > frames else len(lines)
        raise BvhError(f"{path}:{where}: header says {frames} frames, file has {len(rows)} frame lines")
    try:  # fast path: one conversion of the whole table
        flat = np.array(" ".join(r for _, r in rows).split(), dtype=np.float64)
        if flat.size == frames * C:
            motion = flat.reshape(frames, C)
            if np.isfinite(motion).all():
                return motion
    except ValueError:
        pass
    motion = np.empty((frames, C))
    for t, (k, text) in enumerate(rows):  # slow path: find the offending line
        parts = text.split()
        if len(parts) != C:
            raise BvhError(f"{path}:{k + 1}: frame {t} has {len(parts)} values, the hierarchy has {C} channels")
        try:
            motion[t] = np.array(parts, dtype=np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise BvhError(f"{path}:{k + 1}: frame {t}: {bad!r} is not a number") from None
        if not np.isfinite(motion[t]).all():
            raise BvhError(f"{path}:{k + 1}: frame {t} has a non-finite value")
    return motion


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
