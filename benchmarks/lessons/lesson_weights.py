"""Make the lesson weights (``invlab/lessons/``): the networks the notebooks show by default.

Each lesson network trains with the recipe (``RECOMMENDED``: cosine decay, centring and
max-abs scaling, the balance term; 2000 steps), the paper's (alpha, beta) for its topology
(Table 2), 50 labels (label draw 0), seed 0, one thread, model selection on the validation
split. The selected weights are stored as a slim checkpoint (no optimiser state) and
re-measured as stored on the test set; ``manifest.json`` records each file's SHA-256, test
and validation accuracy, config, command, hardware and date.

    python -m benchmarks.lessons.lesson_weights              # all four (about 30 minutes on one core)
    python -m benchmarks.lessons.lesson_weights --only mnist-smallcnn-mean.pt
"""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    import torch

    from invlab.io import save_json, save_torch, sha256_file
    from invlab.lessons import FOLDER, LESSONS, MANIFEST, manifest
    from invlab.theory.paper import TABLE2
    from invlab.train import RECOMMENDED, TrainConfig, load_model, train
    from invlab.training.evaluate import accuracy
    from invlab.training.provenance import provenance

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", default=None, help="file names to rebuild (default: all)")
    p.add_argument("--steps", type=int, default=RECOMMENDED["steps"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    records = manifest() if MANIFEST.exists() else {}
    for (dataset, model), name in LESSONS.items():
        if args.only is not None and name not in args.only:
            continue
        alpha, beta = TABLE2[model][1]
        config = TrainConfig(**{**RECOMMENDED, "steps": args.steps}, model=model, dataset=dataset, alpha=alpha,
                             beta=beta, seed=0, device="cpu")
        result = train(config, progress=False)
        trainer_state = {"format": 1, "config": config.to_dict(), "data": result.data,
                         "model_source": {"kind": "registry", "name": model},
                         "model": {k: v.detach().clone() for k, v in result.model.state_dict().items()},
                         "best_step": result.best_step, "best_val": result.best_val_accuracy}
        path = save_torch(trainer_state, FOLDER / name)
        stored = load_model(path)  # as a lesson loads it
        data = result.data_ref
        test = accuracy(stored, data.x_test, data.y_test)
        records[name] = {"dataset": dataset, "model": model, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                         "test_accuracy": test, "val_accuracy": result.best_val_accuracy, "best_step": result.best_step,
                         "config": config.to_dict(), "provenance": provenance(device="cpu")}
        print(f"{name}: test {test:.2f} % (validation {result.best_val_accuracy:.2f} % at step {result.best_step}), "
              f"{path.stat().st_size / 1024:.0f} KiB", flush=True)
        save_json(records, MANIFEST)


if __name__ == "__main__":
    main()
