"""``bin/run``'s training both ways: the recipe's 2000 steps on the same label draw with the
inverse computed by autograd (``--inverse-method autograd``, the default before the explicit
transposed pass) and by the explicit transposed pass (``auto``, the default now), one after the
other in this process's machine, nothing else running. Wall time, steps per second and the
validation-selected test accuracy of each: the two must agree within one run's noise (they
differ only in the rounding of floating-point sums).

    python -m benchmarks.speed.inverse_methods_run            # results/inverse_methods_run.{json,md}
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.train import RECOMMENDED, TrainConfig, train
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/inverse_methods_run.json")
    args = p.parse_args(argv)
    runs = {}
    for method in ("autograd", "auto"):
        config = TrainConfig(**{**RECOMMENDED, "steps": args.steps}, model="smallcnn-mean", labels_per_class=5,
                             alpha=0.7, beta=0.2, seed=args.seed, device="cpu", inverse_method=method)
        t0 = time.perf_counter()
        result = train(config, progress=False)
        wall = time.perf_counter() - t0
        runs[method] = {"inverse_method": result.inverse_method, "test_accuracy": result.test_accuracy,
                        "best_val_accuracy": result.best_val_accuracy, "best_step": result.best_step,
                        "final_test_accuracy": result.final_test_accuracy, "wall_time_s": wall,
                        "train_wall_time_s": result.wall_time_s, "steps_per_s": args.steps / result.wall_time_s}
        print(f"{method}: {runs[method]}", flush=True)
    out = {"steps": args.steps, "seed": args.seed, "model": "smallcnn-mean", "labels": 50, "runs": runs,
           "speedup": runs["autograd"]["train_wall_time_s"] / runs["auto"]["train_wall_time_s"],
           **results_header(device="cpu")}
    rows = [[m, r["inverse_method"], f"{r['test_accuracy']:.2f}", f"{r['best_val_accuracy']:.2f}", r["best_step"],
             f"{r['train_wall_time_s']:.0f}", f"{r['steps_per_s']:.2f}"] for m, r in runs.items()]
    text = (f"# bin/run's recipe with each way of computing the inverse\n\n{args.steps} steps of the recipe, "
            f"smallcnn-mean, 50 labels, label draw {args.seed}, both threads, one run after the other.\n\n"
            + markdown_table(["--inverse-method", "computed by", "test accuracy (%)", "validation (%)", "best step",
                              "training time (s)", "steps/s"], rows)
            + f"\n\nThe transposed pass trains {out['speedup']:.2f}× as fast.\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
