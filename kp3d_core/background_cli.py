"""``kp3d background``: per-camera backgrounds for the node (``model.backgrounds``) and what they look like.

From an EMPTY-scene capture (a bag of a few seconds with nobody in view; ``kp3d bag from-videos`` makes one from
videos): per camera the robust temporal mode of its frames (:func:`kp3d_core.background.mode_background`),
written as ``OUT/<camera>.png``, the layout the node's ``model.backgrounds`` and
:func:`kp3d_core.background.load_stored_backgrounds` read. Something that moved in the capture (a person walking
through, a door) is a warning naming the camera: the capture is not empty.

From the person recording itself (``--person``, no empty capture): the run-time estimator (the node's code path,
shipped model unless ``--checkpoint``) runs over the recording and learns the backgrounds as the node would,
leaving out where the person is and healing ghosts; the backgrounds at the end are written, and each camera's
share of the person's area whose room was never seen free of the person says how far to trust them.

``OUT/background.png`` shows per camera the background and, with ``--check-bag`` (a recording with the person),
one of its frames with the crop box and the foreground mask against that background: a box around the person and
a mask that is the person's silhouette mean the background is good.

Examples::

    kp3d background --bag out/empty --out out/backgrounds
    kp3d background --bag out/empty --start 1 --end 4 --check-bag out/take1 --out out/backgrounds
    kp3d background --bag out/take1 --rig rig.yaml --person --out out/backgrounds_learnt

Prints warnings and the figures on stderr and one JSON line on stdout (the last line).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .background import median_background, mode_background
from .bagio import BagError, camera_topics, read_camera_frames
from .cli_args import UsageError, non_negative_int, positive_int
from .crop import CropParams, detect_box, foreground_mask

TILE_WIDTH = 320
MOVING_LIMIT = 0.02
"""Share of the empty capture's frames with a person-sized blob against its background above which it is not
empty (a warning)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "examples:" + __doc__.split("Examples::", 1)[1].split("Prints", 1)[0]
    parser.add_argument("--bag", type=Path, required=True, metavar="DIR",
                        help="rosbag2 folder with Image + CameraInfo per camera: the empty scene (or, with --person, "
                             "the recording with the person)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder for <camera>.png (the node's model.backgrounds) and background.png")
    parser.add_argument("--rig", type=Path, default=None, metavar="FILE",
                        help="rig file: needed by --person; with --check-bag the views choose the person's blob "
                             "together")
    parser.add_argument("--cameras", nargs="+", default=None, metavar="NAME", help="cameras (default: all in the bag)")
    parser.add_argument("--start", type=float, default=0.0, metavar="S",
                        help="use frames from S seconds after the bag's first frame (default 0)")
    parser.add_argument("--end", type=float, default=None, metavar="S",
                        help="... up to S seconds after it (default: to the end)")
    parser.add_argument("--samples", type=positive_int, default=60, metavar="N",
                        help="frames (spread evenly) of the temporal mode (default 60)")
    parser.add_argument("--method", choices=("mode", "median"), default="mode",
                        help="temporal mode (robust to someone passing through; default) or median")
    parser.add_argument("--slop-ms", type=float, default=0.0, metavar="MS",
                        help="largest stamp spread within a synchronised frame, ms (default 0: exact stamps)")
    parser.add_argument("--check-bag", type=Path, default=None, metavar="DIR",
                        help="a recording with the person: background.png shows one of its frames' foreground "
                             "mask and crop box against the new backgrounds")
    parser.add_argument("--check-frame", type=non_negative_int, default=None, metavar="N",
                        help="which frame of --check-bag (default: its middle one)")
    parser.add_argument("--person", action="store_true",
                        help="--bag has the person in it (no empty capture): learn the backgrounds as the node does, "
                             "leaving the person out, and say how far to trust them (needs --rig)")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                        help="with --person: checkpoint or ONNX file (default: the shipped model)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _frames(bag: Path, cameras, slop_ns: int, start: float, end: float | None):
    """(index, frame) of the bag's synchronised frames between ``start`` and ``end`` seconds after the first."""
    t0 = None
    for i, f in enumerate(read_camera_frames(bag, cameras, slop_ns)):
        t0 = f.stamp_ns if t0 is None else t0
        t = (f.stamp_ns - t0) * 1e-9
        if t < start:
            continue
        if end is not None and t >= end:
            break
        yield i, f


def sample_frames(bag: Path, cameras, slop_ns: int, start: float, end: float | None, samples: int):
    """(camera names, frame count, evenly spread frames: list of V images each) of the bag's window."""
    kept, every, count, names = [], 1, 0, cameras
    for _, f in _frames(bag, cameras, slop_ns, start, end):
        names = names or sorted(f.images)
        if count % every == 0:
            kept.append([f.images[n] for n in names])
            if len(kept) >= 2 * samples:
                kept, every = kept[::2], every * 2
        count += 1
    if not count:
        raise BagError(f"bag {bag}: no synchronised frame of cameras {cameras or 'all'} between {start:g} s and "
                       f"{'the end' if end is None else f'{end:g} s'}")
    if len(kept) > samples:
        kept = [kept[i] for i in np.unique(np.round(np.linspace(0, len(kept) - 1, samples)).astype(int))]
    return list(names), count, kept


def moving_figures(frames: list[np.ndarray], background: np.ndarray, params: CropParams = CropParams()) -> dict:
    """How much of an 'empty' capture is not background: the share of frames with a person-sized blob against it
    and the largest foreground share of an image."""
    hits, largest = 0, 0.0
    for img in frames:
        m = foreground_mask(img, background, params)
        largest = max(largest, float(m.mean()))
        hits += detect_box(img, background, params) is not None
    return {"frames": len(frames), "moving_frames_pct": round(100.0 * hits / max(len(frames), 1), 1),
            "max_foreground_pct": round(100.0 * largest, 2)}


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    h = max(1, round(image.shape[0] * TILE_WIDTH / image.shape[1]))
    tile = cv2.resize(image, (TILE_WIDTH, h), interpolation=cv2.INTER_AREA)
    strip = np.full((16, TILE_WIDTH, 3), 255, np.uint8)
    cv2.putText(strip, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile])


def _box_drawn(image: np.ndarray, box) -> np.ndarray:
    out = image.copy()
    if box is not None:
        h = box.side / 2
        cv2.rectangle(out, (int(box.cx - h), int(box.cy - h)), (int(box.cx + h), int(box.cy + h)), (40, 220, 40),
                      max(2, image.shape[1] // 200))
    return out


def picture(names: list[str], backgrounds: list[np.ndarray], check: list | None = None,
            unseen: list[np.ndarray] | None = None) -> np.ndarray:
    """Rows per camera: the background (``unseen`` pixels tinted red), then with ``check`` = V (image, mask, box)
    the frame with its crop box and the foreground mask. (H, W, 3) uint8 RGB."""
    rows = []
    for v, name in enumerate(names):
        bg = backgrounds[v]
        if unseen is not None:
            bg = bg.copy()
            bg[unseen[v]] = (0.5 * bg[unseen[v]] + [127, 0, 0]).astype(np.uint8)
        tiles = [_tile(bg, f"{name}: background" + (" (red: never seen free)" if unseen is not None else ""))]
        if check is not None:
            img, mask, box = check[v]
            tiles += [_tile(_box_drawn(img, box), f"{name}: check frame + crop box"),
                      _tile(_box_drawn(np.repeat(mask[..., None] * 255, 3, axis=2), box), f"{name}: foreground")]
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows)


def check_frame(bag: Path, names: list[str], backgrounds: list[np.ndarray], slop_ns: int, index: int | None,
                rig=None) -> tuple[list, dict]:
    """One frame of ``bag`` against ``backgrounds``: V (image, mask, box) and per camera figures."""
    from .data.studio import SampleParams, detect_boxes

    frames = list(read_camera_frames(bag, names, slop_ns))
    if not frames:
        raise BagError(f"--check-bag {bag}: no synchronised frame of cameras {names}")
    i = len(frames) // 2 if index is None else index
    if i >= len(frames):
        raise UsageError(f"--check-frame {i}: {bag} has {len(frames)} synchronised frames")
    images = [frames[i].images[n] for n in names]
    for n, img, bg in zip(names, images, backgrounds):
        if img.shape != bg.shape:
            raise UsageError(f"--check-bag: camera '{n}' images are {img.shape[1]}x{img.shape[0]}, the backgrounds "
                             f"{bg.shape[1]}x{bg.shape[0]}")
    cams = list(rig.subset(names).cameras) if rig is not None else None
    boxes = detect_boxes(images, backgrounds, SampleParams(), cams)
    params = CropParams()
    masks = [foreground_mask(img, bg, params) for img, bg in zip(images, backgrounds)]
    figures = {n: {"check_frame": i, "foreground_pct": round(100.0 * float(m.mean()), 2),
                   "box_side_frac": None if b is None else round(b.side / min(img.shape[:2]), 3)}
               for n, img, m, b in zip(names, images, masks, boxes)}
    return list(zip(images, masks, boxes)), figures


def learn_with_person(args, names: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """--person: the node's estimator over the recording; (backgrounds, never-free masks, per camera figures)."""
    from tqdm import tqdm

    from .inference.pipeline import EstimatorSettings, build_estimator
    from .rig import load_rig

    rig = load_rig(args.rig).subset(names)
    est = build_estimator(EstimatorSettings(model=args.checkpoint), rig)
    pred = est.predictor
    inside = None
    counted = 0
    boxes_area = np.zeros(len(names))
    slop_ns = int(round(args.slop_ms * 1e6))
    for _, f in tqdm(_frames(args.bag, names, slop_ns, args.start, args.end), desc="learning", unit="frame",
                     disable=args.no_progress):
        images = [f.images[n] for n in names]
        ready = pred.background_ready
        out = est.process(images, f.stamp_ns)
        if not ready:
            continue
        if inside is None:
            inside = [np.zeros(img.shape[:2], np.int32) for img in images]
        counted += 1
        for v, b in enumerate(out.boxes):
            if np.isfinite(b).all():
                h = b[2] / (2 * pred.config.crop.margin)  # the person's blob, not the crop's margin
                y0, y1 = max(int(b[1] - h), 0), int(b[1] + h) + 1
                x0, x1 = max(int(b[0] - h), 0), int(b[0] + h) + 1
                inside[v][y0:y1, x0:x1] += 1
                boxes_area[v] += (2 * h) ** 2
    if not counted:
        raise BagError(f"bag {args.bag}: the recording ended during the background warm-up "
                       f"({pred.config.background_warmup * pred.config.background_warmup_stride} frames)")
    backgrounds = [pred.backgrounds[v].image() for v in range(len(names))]
    unseen = [c >= 0.95 * counted for c in inside]
    figures = {}
    for v, n in enumerate(names):
        mean_area = boxes_area[v] / counted
        share = float(unseen[v].sum()) / mean_area if mean_area else 0.0
        figures[n] = {"frames": counted, "never_free_of_person_pct": round(100.0 * min(share, 1.0), 1),
                      "contaminated": bool(pred.contamination[v]), "signs": pred.monitor.reasons(v)}
    return backgrounds, unseen, figures


def main(args: argparse.Namespace) -> int:
    if args.end is not None and args.end <= args.start:
        raise UsageError(f"--end {args.end:g} must be after --start {args.start:g}")
    if args.person and args.rig is None:
        raise UsageError("--person needs --rig (the views find the person together)")
    if args.checkpoint is not None and not args.person:
        raise UsageError("--checkpoint is for --person only")
    if not (args.bag / "metadata.yaml").is_file():
        raise FileNotFoundError(f"--bag {args.bag}: not a rosbag2 folder (no metadata.yaml)")
    slop_ns = int(round(args.slop_ms * 1e6))
    warnings, unseen = [], None
    if args.person:
        names = list(args.cameras) if args.cameras else list(camera_topics(args.bag))
        backgrounds, unseen, cams = learn_with_person(args, names)
        count = next(iter(cams.values()))["frames"]
        for n, c in cams.items():
            if c["never_free_of_person_pct"] > 10 or c["contaminated"]:
                warnings.append(
                    f"camera '{n}': {c['never_free_of_person_pct']} % of the person's area was never seen without "
                    f"the person{'; ' + '; '.join(c['signs']) if c['signs'] else ''}: the background there may "
                    f"hold the person's ghost; record a few seconds of the empty scene and run kp3d background on it")
    else:
        names, count, kept = sample_frames(args.bag, args.cameras, slop_ns, args.start, args.end, args.samples)
        estimate = mode_background if args.method == "mode" else median_background
        backgrounds, cams = [], {}
        for v, n in enumerate(names):
            stack = np.stack([k[v] for k in kept])
            bg = estimate(stack)
            backgrounds.append(bg)
            cams[n] = moving_figures(list(stack), bg)
            if cams[n]["moving_frames_pct"] > 100 * MOVING_LIMIT:
                warnings.append(
                    f"camera '{n}': the capture is not empty: something person-sized moved in "
                    f"{cams[n]['moving_frames_pct']} % of the frames (up to {cams[n]['max_foreground_pct']} % of the "
                    f"image); record again with nobody in view, choose a still window with --start/--end, or use "
                    f"--person on the recording itself")
    args.out.mkdir(parents=True, exist_ok=True)
    for n, bg in zip(names, backgrounds):
        path = args.out / f"{n}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write the background")
    check = None
    if args.check_bag is not None:
        rig = None
        if args.rig is not None:
            from .rig import load_rig

            rig = load_rig(args.rig)
        check, figs = check_frame(args.check_bag, names, backgrounds, slop_ns, args.check_frame, rig)
        for n in names:
            cams[n].update(figs[n])
    pic = args.out / "background.png"
    cv2.imwrite(str(pic), cv2.cvtColor(picture(names, backgrounds, check, unseen), cv2.COLOR_RGB2BGR))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"backgrounds: {args.out} ({', '.join(n + '.png' for n in names)}); picture {pic}; use them with the node's "
          f"model.backgrounds:={args.out}", file=sys.stderr)
    print(json.dumps({"out": str(args.out), "bag": str(args.bag), "mode": "person" if args.person else "empty",
                      "frames": count, "cameras": cams, "picture": str(pic), "warnings": len(warnings)}))
    return 0
