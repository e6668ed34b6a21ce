"""Is the mean teacher under-tuned by the pruner? Its tuned EMA decay is the smallest the space
offers (0.95), and the pruner cut most trials with 0.99 and 0.999 early. This runs the study's
tuned mean-teacher setting on MNIST draw 0 at full length with each decay, all else equal, and
reports the student's and the teacher's validation accuracy and the test accuracy at the
validation-selected step.

    python -m benchmarks.methods.mean_teacher_ema                  # MNIST, draw 0, decays 0.95 0.99 0.999
    python -m benchmarks.methods.mean_teacher_ema --report-only    # the table from the runs so far

Resumable: each run lives in ``runs/mean_teacher_ema/<decay>`` and is skipped once finished.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tuned_run(generality: Path, dataset: str, seed: int) -> dict:
    """The study's mean teacher without R on ``dataset`` and label draw ``seed``: its row
    (config and accuracies)."""
    runs = json.loads(generality.read_text())["runs"]
    row = next((r for r in runs if (r["dataset"], r["labels"], r["method"], r["reconstruction"], r["seed"])
                == (dataset, 50, "mean-teacher", False, seed)), None)
    if row is None:
        raise SystemExit(f"{generality} has no finished mean-teacher run on {dataset} draw {seed}: "
                         "run python -m benchmarks.generality first")
    return row


def main(argv=None) -> int:
    from invlab.io import markdown_table, save_json, save_report
    from invlab.train import TrainConfig, train
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decays", type=float, nargs="+", default=[0.95, 0.99, 0.999])
    p.add_argument("--generality", type=Path, default=ROOT / "results" / "generality.json")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "mean_teacher_ema")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "mean_teacher_ema.json")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    study = tuned_run(args.generality, args.dataset, args.seed)
    base = study["config"]
    rows = []
    for decay in args.decays:
        folder = args.runs_dir / f"{args.dataset}-{args.seed}-ema{decay:g}"
        if decay == base["ema"]:  # the study's own run: the same setting, not run again
            rows.append({"ema": decay, "val_accuracy": study["val_accuracy"], "source": "the study's run",
                         "teacher_val_accuracy": study.get("teacher_val_accuracy"),
                         "test_accuracy": study["test_accuracy"], "best_step": None, "minutes": study["minutes"]})
            continue
        if not (folder / "result.json").exists() and not args.report_only:
            result = train(TrainConfig(**{**base, "ema": decay}), out_dir=folder,
                           resume=(folder / "checkpoint.pt").exists())
            if result.interrupted:
                return 130
            save_json(result.to_dict(), folder / "result.json")  # the run is finished: skipped from now on
        if not (folder / "result.json").exists():
            continue
        res = json.loads((folder / "result.json").read_text())
        best = next(h for h in res["history"] if h["step"] == res["best_step"])
        rows.append({"ema": decay, "val_accuracy": res["best_val_accuracy"],
                     "teacher_val_accuracy": best.get("teacher_val_accuracy"), "test_accuracy": res["test_accuracy"],
                     "best_step": res["best_step"], "minutes": round(res["wall_time_s"] / 60, 1)})
    out = {"dataset": args.dataset, "seed": args.seed, "base": {k: base[k] for k in ("lr", "consistency", "noise")},
           "runs": rows, **results_header(device="cpu")}
    table = markdown_table(["EMA decay", "student validation %", "teacher validation %", "test % (selected step)",
                            "selected step", "minutes"],
                           [[f"{r['ema']:g}", f"{r['val_accuracy']:.2f}",
                             f"{r['teacher_val_accuracy']:.2f}" if r["teacher_val_accuracy"] is not None else None,
                             f"{r['test_accuracy']:.2f}", r["best_step"], r["minutes"]] for r in rows])
    text = (f"# Mean teacher: the EMA decay at full length\n\n{args.dataset}, label draw {args.seed}, 50 labels, the "
            f"study's tuned setting (lr {base['lr']:.3g}, consistency {base['consistency']:.3g}, noise "
            f"{base['noise']:.3g}), 2000 steps, only the decay changed.\n\n{table}\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
