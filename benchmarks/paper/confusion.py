"""Where a 50-label run goes wrong: the confusion matrix of a run's selected model on the
**validation** split (the test set is not looked at), and its largest off-diagonal cells.

    python -m benchmarks.paper.confusion runs/recipe_study/base-2k-seed1-* runs/recipe_study/balance-2k-seed1-*

Each argument is a run folder holding ``checkpoint.pt`` (``invlab train --out`` or a study
run). Writes ``results/confusion.json`` (+ ``.md``): per run, the matrix (rows: true
class, columns: predicted), per-class recall and the five most confused pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def confusion(run_dir: Path, data_root=None, keep_data: bool = False) -> dict:
    """The confusion matrix of the run's selected model on its data set's validation split
    (the data set, label draw and preprocessing its checkpoint records). ``keep_data``: also
    return the (preprocessed) data, the model and the predictions under ``"_data"``,
    ``"_model"``, ``"_pred"`` (not JSON) for figures of the mistakes."""
    import dataclasses

    import torch

    from invlab.data.preprocess import preprocess_data
    from invlab.io import load_torch
    from invlab.train import TrainConfig, build_data, load_model
    from invlab.training.evaluate import predictions

    state = load_torch(run_dir / "checkpoint.pt")
    config = state["config"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train_config = TrainConfig(**{k: v for k, v in config.items() if k in fields and k != "device"}, device="cpu")
    if data_root is not None:
        train_config = dataclasses.replace(train_config, data_root=str(data_root))
    model = load_model(run_dir / "checkpoint.pt")
    data = preprocess_data(build_data(train_config), train_config.preprocess)
    pred = predictions(model, data.x_val)
    c = data.num_classes
    matrix = torch.zeros(c, c, dtype=torch.long)
    matrix.index_put_((data.y_val, pred), torch.ones_like(pred), accumulate=True)
    recall = (matrix.diag().float() / matrix.sum(1).clamp_min(1).float() * 100).tolist()
    off = [(int(matrix[t, p]), t, p) for t in range(c) for p in range(c) if t != p]
    top = sorted(off, reverse=True)[:5]
    out = {"run": run_dir.name, "dataset": data.name, "seed": config["seed"], "step": state["best_step"],
           "val_accuracy": float(matrix.diag().sum() / matrix.sum() * 100), "matrix": matrix.tolist(),
           "recall": recall, "class_names": list(data.class_names or range(c)),
           "most_confused": [{"true": t, "predicted": p, "count": n} for n, t, p in top],
           "labelled_classes": data.y_labelled.tolist()}
    if keep_data:
        out.update(_data=data, _model=model, _pred=pred)
    return out


def markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

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
    from invlab.training.provenance import results_header

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
