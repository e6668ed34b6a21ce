"""Where a 50-label run goes wrong: the confusion matrix of a run's selected model on the
**validation** split (the test set is not looked at), and its largest off-diagonal cells.

    python -m benchmarks.confusion runs/recipe_study/base-2k-seed1-* runs/recipe_study/balance-2k-seed1-*

Each argument is a run folder holding ``checkpoint.pt`` (``invlab train --out`` or a study
run). Writes ``results/confusion.json`` (+ ``.md``): per run, the matrix (rows: true
class, columns: predicted), per-class recall and the five most confused pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def confusion(run_dir: Path, data_root=None) -> dict:
    import torch

    from invlab.data import load_mnist, preprocess
    from invlab.training.evaluate import predictions
    from invlab.io import load_torch
    from invlab.train import load_model

    state = load_torch(run_dir / "checkpoint.pt")
    config = state["config"]
    model = load_model(run_dir / "checkpoint.pt")
    data = load_mnist(config["labels_per_class"], config["seed"], config["val_size"], root=data_root)
    pred = predictions(model, preprocess(data.x_val, config.get("preprocess", "none")))
    matrix = torch.zeros(10, 10, dtype=torch.long)
    matrix.index_put_((data.y_val, pred), torch.ones_like(pred), accumulate=True)
    recall = (matrix.diag().float() / matrix.sum(1).clamp_min(1).float() * 100).tolist()
    off = [(int(matrix[t, p]), t, p) for t in range(10) for p in range(10) if t != p]
    top = sorted(off, reverse=True)[:5]
    return {"run": run_dir.name, "seed": config["seed"], "step": state["best_step"],
            "val_accuracy": float(matrix.diag().sum() / matrix.sum() * 100), "matrix": matrix.tolist(),
            "recall": recall, "most_confused": [{"true": t, "predicted": p, "count": n} for n, t, p in top],
            "labelled_classes": data.y_labelled.tolist()}


def markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.experiments.provenance import provenance_line

    rows = []
    for r in out["runs"]:
        low = min(range(len(r["recall"])), key=lambda c: r["recall"][c])
        pairs = ", ".join(f"{c['true']} → {c['predicted']}: {c['count']}" for c in r["most_confused"][:3])
        rows.append([r["run"], f"{r['val_accuracy']:.2f}", f"class {low}: {r['recall'][low]:.1f}", pairs])
    lines = [markdown_table(["run", "validation (%)", "lowest recall (%)",
                             "most confused (true → predicted: validation images)"], rows),
             "", provenance_line({**out, "hardware": None}), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    from invlab.io import save_report
    from invlab.experiments.provenance import results_header

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders holding checkpoint.pt")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="results/confusion.json")
    args = p.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "checkpoint.pt").is_file()]
    if missing:
        p.error(f"no checkpoint.pt in {', '.join(missing)}")
    out = {"split": "validation", "runs": [confusion(r, args.data_root) for r in args.runs], **results_header()}
    save_report(out, args.out, markdown(out))
    print(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
