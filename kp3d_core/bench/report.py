"""The readable side of ``kp3d bench accuracy``: ``results.md`` (its figures as Markdown tables) and ``rows.png``
(each ablation and views row: every run's MPJPE and the mean with its standard error). Both are made from the
bench's JSON lines alone, so they always say what ``results.jsonl`` says."""
from __future__ import annotations

from pathlib import Path

from ..plots import plot_rows


def _num(value, fmt: str = ".1f") -> str:
    return "" if not isinstance(value, (int, float)) else format(value, fmt)


def _row_table(rows: list[tuple[str, dict]], changes: dict[str, dict]) -> list[str]:
    """Markdown rows of the ablation or views table: (label, row line) in order; ``changes`` by the label."""
    lines = ["| row | MPJPE per run (mm) | mean ± s.e. (mm) | change (mm) | change (s.e.) | change, paired by seed (s.e.) |",
             "|---|---|---|---|---|---|"]
    for label, row in rows:
        per_seed = " / ".join(_num(v) for v in row.get("mpjpe_mm_per_seed", []))
        mean = _num(row.get("mpjpe_mm")) + ("" if row.get("mpjpe_mm_sem") is None else f" ± {row['mpjpe_mm_sem']:.1f}")
        same = f" (= {row['same_as']})" if row.get("same_as") else ""
        c = changes.get(label, {})
        lines.append(f"| {label}{same} | {per_seed} | {mean} | {_num(c.get('delta_mm'), '+.1f')} | "
                     f"{_num(c.get('delta_in_sem'), '+.1f')} | {_num(c.get('delta_paired_in_sem'), '+.1f')} |")
    return lines


def _subset_runs(rows: list[tuple[str, dict]]) -> list[str]:
    """For views rows trained on several camera subsets: each run's cameras, seed and MPJPE (mm)."""
    lines = []
    for label, row in rows:
        runs = zip(row.get("cameras_per_run") or [], row.get("seeds", []), row.get("mpjpe_mm_per_seed", []))
        text = "; ".join(f"{'+'.join(cams)} seed {seed}: {_num(mpjpe)}" for cams, seed, mpjpe in runs)
        if text and len({tuple(c) for c in row["cameras_per_run"]}) > 1:
            lines.append(f"- {label} views, each run: {text}")
    return lines + ([""] if lines else [])


def side_rows(log: list[dict]) -> dict[str, list[tuple[str, dict]]]:
    """The ablation rows (labelled by their loss set) and the views rows (by their number of views), in order."""
    return {"ablation": [(l["losses"], l) for l in log if l.get("run") == "ablation"],
            "views": [(str(l["views"]), l) for l in log if l.get("run") == "views"]}


def markdown(log: list[dict]) -> str:
    """``results.md``: the plan, the main and supervised figures, the ablation and views rows, and the verdicts."""
    plan = next((l for l in log if l.get("run") == "plan"), {})
    summary = next((l for l in log if l.get("run") == "summary"), {})
    out = ["# kp3d bench accuracy", "",
           f"Train `{plan.get('train')}`, test `{plan.get('test')}`, cameras {plan.get('cameras')}, device "
           f"{plan.get('device')}; steps main {plan.get('main_steps')} / side {plan.get('side_steps')} (minutes "
           f"{plan.get('main_minutes')} / {plan.get('side_minutes')}); {plan.get('seeds')} seed(s) per side row.", ""]
    main = [l for l in log if l.get("run") == "unsupervised"]
    if main:
        out += ["## Unsupervised keypoints + mapping (test)", "",
                "| labels (%) | mapping | MPJPE (mm) | P-MPJPE (mm) | PCK@150 (%) | train min | samples/s |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {l['labels_pct']:g} | {l['mapping']} | {_num(l.get('mpjpe_mm'))} | {_num(l.get('p_mpjpe_mm'))} | "
                f"{_num(l.get('pck150_pct'))} | {_num(l.get('train_minutes'))} | {_num(l.get('samples_per_s'))} |"
                for l in main]
        if "mean_pose_baseline_root_mm" in main[0]:
            out += ["", f"Mean-pose baseline (10 % labels, root-aligned): {main[0]['mean_pose_baseline_root_mm']:.1f} mm."]
        out.append("")
    sup = next((l for l in log if l.get("run") == "supervised_upper_bound"), None)
    if sup:
        ratios = ", ".join(f"{k.split('_')[-1]}: {v:.2f}" for k, v in sup.items() if k.startswith("ratio_"))
        out += ["## Supervised upper bound", "", f"MPJPE {_num(sup.get('mpjpe_mm'))} mm, P-MPJPE "
                f"{_num(sup.get('p_mpjpe_mm'))} mm, {_num(sup.get('train_minutes'))} training minutes. "
                f"Unsupervised + MLP over supervised: {ratios or 'no main run'}.", ""]
    for kind, rows in side_rows(log).items():
        if rows:
            title = "Loss ablation (cumulative rows)" if kind == "ablation" else "Views"
            changes = {str(c["to"]): c for c in summary.get(f"{kind}_changes", [])}
            out += [f"## {title}, 10 % labels", "", *_row_table(rows, changes), "",
                    f"Every step lowers MPJPE: {summary.get(f'{kind}_each_lowers', 'n/a')}.", ""]
            out += _subset_runs(rows)
    return "\n".join(out)


def write_report(log: list[dict], out: Path) -> list[Path]:
    """Write ``out/results.md`` and, when there are ablation or views rows, ``out/rows.png``; returns the paths."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.md"]
    paths[0].write_text(markdown(log))
    groups = {("Loss ablation" if k == "ablation" else "Views"): v for k, v in side_rows(log).items() if v}
    if groups:
        paths.append(plot_rows(groups, out / "rows.png"))
    return paths

