"""The paper's proposed extensions (§4), measured on MNIST with 50 labels against eq. 10.

Parts (``--parts``, any subset; each is merged into ``--out``, so parts can run apart):

* ``per_layer`` — eqs. 11-12: the recipe plus reconstruction terms at hidden layers
  (``--layer-gamma`` on each of ``--layers``), against the recipe alone;
* ``schedules`` — eq. 13: "reconstruction first, then classification and entropy"
  (alpha 0.3 -> 0.7 and beta 0.8 -> 0.2 over the first half of the run), against
  constant (0.7, 0.2);
* ``learned_weights`` — eqs. 14-15: alpha and beta learned by hypergradient from
  (0.7, 0.2), against the constant (0.7, 0.2) of the recipe (the best fixed setting
  chosen on validation so far: docs/site/results/mnist.md);
* ``clustering`` — alpha = 0, no labels: reconstruction plus the mutual-information
  clustering term, cluster accuracy and NMI on the test set, against k-means on raw
  pixels (``invlab.extensions.cluster``);
* ``ebgan`` — the reconstruction energy as an EBGAN discriminator (``invlab.extensions.ebgan``):
  samples through training (``docs/figures/ebgan_samples.png``), scored by a supervised
  classifier trained here (share classified with confidence > 0.9, class histogram).

Every run of the first three uses the recipe (``invlab.train.RECOMMENDED``: cosine decay,
center-maxabs, class-balance term, 2000 steps) on the same label draws, each resumable
under ``--runs-dir``; the baseline's runs are those of ``benchmarks/recipe/recipe_study.py``'s
``balance-maxabs-2k`` arm when they exist there (same config, same folder key).

    python -m benchmarks.paper.extensions --parts per_layer schedules learned_weights --seeds 0 1 2 --jobs 2
    python -m benchmarks.paper.extensions --parts clustering --seeds 0 1 2

Output: ``results/extensions.json`` (+ ``.md``): for the first three parts
``{"baseline": [per-seed test %], "variant": [...], "settings": {...}, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BASE = dict(model="smallcnn-mean", labels_per_class=5, alpha=0.7, beta=0.2, lr=0.01, schedule="cosine",
            labelled_batch=50, unlabelled_batch=100, eval_every=250, log_unweighted=False, steps=2000,
            balance=1.0, preprocess="center-maxabs")
BASELINE_ARM = "balance-maxabs-2k"  # benchmarks/recipe/recipe_study.py's name for BASE
PARTS = ("per_layer", "schedules", "learned_weights", "clustering", "ebgan")


def variants(args) -> dict[str, tuple[str, dict]]:
    """part: (what changes, overrides of BASE)."""
    return {
        "per_layer": (f"+ reconstruction at {', '.join(args.layers)} (gamma {args.layer_gamma} each; "
                      f"the input's R keeps eq. 10's weight (1 - alpha)·beta = 0.06)",
                      dict(layers={name: args.layer_gamma for name in args.layers})),
        "schedules": ("reconstruction first: alpha 0.3 -> 0.7 and beta 0.8 -> 0.2, linear over the first half",
                      dict(alpha="0.3:0.7:linear@0.5", beta="0.8:0.2:linear@0.5")),
        "learned_weights": (f"alpha, beta learned by hypergradient from (0.7, 0.2), a step every {args.hyper_every}, "
                            f"{args.hyper_holdout} labelled example(s) per class held out for its objective",
                            dict(learn_weights=True, hyper_every=args.hyper_every, hyper_holdout=args.hyper_holdout)),
    }


def config(overrides: dict, seed: int, args):
    from invlab.train import TrainConfig

    extra = {"steps": args.steps, "eval_every": args.steps} if args.steps else {}
    return TrainConfig(**{**BASE, **overrides, **extra}, seed=seed, device=args.device, dataset=args.dataset,
                       data_root=args.data_root)


def run_parts(args) -> dict:
    from invlab.experiments.studies import best_test_epoch, run_many
    from invlab.train import run_key

    table = variants(args)
    parts = [p for p in args.parts if p in table]
    if not parts:  # clustering or EBGAN alone: no baseline to train
        return {}
    runs, keys = [], []
    for seed in args.seeds:
        base = config({}, seed, args)
        recipe_dir = Path(args.recipe_runs_dir) / f"{BASELINE_ARM}-seed{seed}-{run_key(base)}"
        runs.append(
            (base, recipe_dir if recipe_dir.exists() else Path(args.runs_dir) / f"baseline-seed{seed}-{run_key(base)}")
        )
        keys.append(("baseline", seed))
        for part in parts:
            cfg = config(table[part][1], seed, args)
            runs.append((cfg, Path(args.runs_dir) / f"{part}-seed{seed}-{run_key(cfg)}"))
            keys.append((part, seed))
    results = dict(zip(keys, run_many(runs, args.jobs, labels=[f"{part} seed {seed}" for part, seed in keys],
                                      train=not args.report_only, keep_going=args.keep_going)))
    out = {}
    for part in parts:
        seeds = [s for s in args.seeds if results[("baseline", s)] is not None and results[(part, s)] is not None]
        if not seeds:
            continue
        base = [results[("baseline", s)] for s in seeds]
        var = [results[(part, s)] for s in seeds]
        entry = {
            "description": table[part][0],
            "settings": {**BASE, **table[part][1], **({"steps": args.steps} if args.steps else {})},
            "seeds": seeds,
            "baseline": [r["test_accuracy"] for r in base],
            "variant": [r["test_accuracy"] for r in var],
            "baseline_val": [r["best_val_accuracy"] for r in base],
            "variant_val": [r["best_val_accuracy"] for r in var],
            "variant_test_selected": [best_test_epoch(r)[0] for r in var],
            "variant_elapsed_s": [r.get("elapsed_s", r["wall_time_s"]) for r in var],
            "baseline_elapsed_s": [r.get("elapsed_s", r["wall_time_s"]) for r in base],
            "hardware": var[0]["hardware"],
        }
        entry.update(
            summary(entry["baseline"], "baseline"),
            **summary(entry["variant"], "variant"),
            differences=[v - b for v, b in zip(entry["variant"], entry["baseline"])],
        )
        entry["difference_mean"] = sum(entry["differences"]) / len(entry["differences"])
        if part == "per_layer" and args.per_layer_figure:
            run_dir = dict(zip(keys, [d for _, d in runs]))[("per_layer", seeds[0])]
            entry["figure"] = per_layer_figure(run_dir, list(table[part][1]["layers"]), args)
        if part == "learned_weights":
            entry["trajectory"] = [
                {
                    "step": [h["step"] for h in r["history"]],
                    "alpha": [h["alpha"] for h in r["history"]],
                    "beta": [h["beta"] for h in r["history"]],
                }
                for r in var
            ]
        out[part] = entry
    return out


def ebgan_part(args) -> dict:
    """Train the scoring classifier and the EBGAN, score 1000 fresh samples and the fixed
    code's samples at every checkpoint, save the sample grid."""
    import torch
    from torchvision.utils import make_grid, save_image

    from invlab.data import load_mnist
    from invlab.extensions.ebgan import EBGANConfig, score_samples, train_ebgan
    from invlab.train import TrainConfig, train
    from invlab.training.provenance import hardware

    steps = args.steps or args.ebgan_steps
    clf_cfg = TrainConfig(recipe="paper", model="smallcnn-mean", labels_per_class=500, alpha=1.0, beta=0.0,
                          unlabelled_batch=0, steps=args.steps or 1000, eval_every=args.steps or 250, schedule="cosine",
                          seed=0, device=args.device, data_root=args.data_root, log_unweighted=False)
    clf = train(clf_cfg, progress=False)
    data = load_mnist(1, 0, root=args.data_root)
    gan = train_ebgan(EBGANConfig(steps=steps, sample_every=max(1, steps // 6), margin=args.ebgan_margin,
                                  device=args.device), data.x_train, progress=False)
    gen = gan["generator"]
    with torch.no_grad():
        code = torch.randn(1000, gen.latent, generator=torch.Generator().manual_seed(1))
        fresh = gen(code.to(next(gen.parameters()).device)).cpu()
    model = clf.model.cpu()
    by_step = {str(k): score_samples(model, v) for k, v in gan["samples"].items()}
    grid = make_grid(torch.cat(list(gan["samples"].values())), nrow=16, padding=1, pad_value=1.0)
    Path(args.ebgan_figure).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, args.ebgan_figure)
    return {"settings": gan["config"], "classifier": {"config": clf_cfg.to_dict(), "test_accuracy": clf.test_accuracy},
            "samples_scored": 1000, **score_samples(model, fresh),
            "real_test_digits": score_samples(model, data.x_test[:1000]),
            "fixed_code_by_step": by_step, "history": gan["history"], "train_time_s": gan["train_time_s"],
            "figure": args.ebgan_figure, "hardware": hardware(args.device)}


def summary(values: list[float], name: str) -> dict:
    """``{name}_mean`` and ``{name}_std`` (sample standard deviation) of per-seed values."""
    from invlab.experiments.studies import mean_std

    mean, std = mean_std(values)
    return {f"{name}_mean": mean, f"{name}_std": std}


def per_layer_figure(run_dir: Path, layers: list[str], args) -> str:
    """Test digits, their reconstruction and each hidden layer's output beside its own
    reconstruction (df/dz)^T f, for the selected model of one per_layer run."""
    from invlab.data import load_mnist
    from invlab.inverse import layer_reconstructions
    from invlab.io import save_figures
    from invlab.train import load_model
    from invlab.viz.plots import image_rows, layer_rows

    model = load_model(run_dir / "checkpoint.pt")
    x = model.preprocess(load_mnist(1, 0, root=args.data_root).x_test[:10])
    recs = layer_reconstructions(model, x, ["input", *layers], create_graph=False)
    rows = {"test digits (centred, max-abs scaled)": x, "input: (df/dx)ᵀ f": recs["input"][0],
            **layer_rows({k: recs[k] for k in layers})}
    fig = image_rows(rows, title=f"per-layer reconstructions, {run_dir.name} (each image scaled on its own)")
    return str(save_figures(fig, args.per_layer_figure))


def markdown(out: dict) -> str:
    from invlab.experiments.studies import mean_std
    from invlab.io import markdown_table

    rows = []
    for part in ("per_layer", "schedules", "learned_weights"):
        if part not in out:
            continue
        r = out[part]
        b, v = mean_std(r["baseline"]), mean_std(r["variant"])
        diff = [x - y for x, y in zip(r["variant"], r["baseline"])]
        rows.append([part, r["description"], r["seeds"], f"{b[0]:.2f} ± {b[1]:.2f}", f"{v[0]:.2f} ± {v[1]:.2f}",
                     f"{mean_std(diff)[0]:+.2f} ({' / '.join(f'{d:+.2f}' for d in diff)})"])
    lines = [markdown_table(["extension", "change", "draws", "eq. 10 (recipe) test %", "variant test %",
                             "difference (points)"], rows)]
    if "clustering" in out:
        c = out["clustering"]
        acc, nmi, km = mean_std(c["cluster_accuracy"]), mean_std(c["nmi"]), mean_std(c["kmeans_accuracy"])
        lines += [
            "",
            f"Clustering (alpha = 0, no labels), seeds {c['seeds']}: cluster accuracy {acc[0]:.2f} ± {acc[1]:.2f} %, "
            f"NMI {nmi[0]:.3f} ± {nmi[1]:.3f}; k-means on raw pixels {km[0]:.2f} ± {km[1]:.2f} % "
            f"(NMI {mean_std(c['kmeans_nmi'])[0]:.3f}).",
        ]
    if "ebgan" in out:
        g = out["ebgan"]
        lines += ["", f"EBGAN with D(x) = R(x), {g['settings']['steps']} steps: of {g['samples_scored']} samples, "
                  f"{g['confident_share']:.1f} % classified with confidence > 0.9 by a supervised classifier "
                  f"({g['classifier']['test_accuracy']:.2f} % on the test set; real test digits: "
                  f"{g['real_test_digits']['confident_share']:.1f} %); classes {g['class_histogram']}."]
    lines += [
        "",
        "Commands: " + "; ".join(f"{k}: `{out[k]['command']}`" for k in PARTS if k in out and "command" in out[k]),
    ]
    lines += ["", f"Last command: `{out['command']}` · commit {out['commit']} · {out['hardware']} · {out['date']}", ""]
    return "\n".join(lines)


def parse_args(argv=None):
    from invlab.train import TrainConfig
    from invlab.training.options import add_config_options, add_study_options, check_study_options

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="label draws (clustering: seeds)")
    p.add_argument("--layers", nargs="+", default=["features.2", "features.5"],
                   help="hidden layers of smallcnn-mean reconstructed by per_layer (default: both pooling outputs)")
    p.add_argument("--layer-gamma", type=float, default=0.06, help="weight of each hidden layer's R (per_layer)")
    p.add_argument("--hyper-every", type=int, default=20)
    p.add_argument("--hyper-holdout", type=int, default=1)
    p.add_argument("--cluster-steps", type=int, default=2000)
    p.add_argument("--cluster-beta", type=float, default=0.2, help="reconstruction share of the clustering loss")
    p.add_argument("--per-layer-figure", default="docs/figures/per_layer_reconstructions.json")
    p.add_argument("--ebgan-steps", type=int, default=1500)
    p.add_argument("--ebgan-margin", type=float, default=0.05, help="EBGAN margin m, in units of R")
    p.add_argument("--ebgan-figure", default="docs/figures/ebgan_samples.png")
    p.add_argument("--steps", type=int, default=None, help="override every run's length (smoke runs only)")
    add_config_options(p, TrainConfig(), only=("dataset", "data_root", "device"))  # EBGAN: MNIST only
    p.add_argument("--runs-dir", default="runs/extensions")
    p.add_argument("--recipe-runs-dir", default="runs/recipe_study",
                   help="where benchmarks/recipe/recipe_study.py keeps the baseline's runs (read back when present)")
    p.add_argument("--out", default="results/extensions.json")
    add_study_options(p)
    return check_study_options(p, p.parse_args(argv))


def main(argv=None) -> int:
    from invlab.io import save_report
    from invlab.training.provenance import results_header

    args = parse_args(argv)
    out_path = Path(args.out)
    new = run_parts(args)
    if "ebgan" in args.parts and not args.report_only:  # not resumable: kept in the results file
        new["ebgan"] = ebgan_part(args)
    if "clustering" in args.parts:
        from invlab.extensions.cluster import clustering_study

        new["clustering"] = clustering_study(args.seeds, steps=args.steps or args.cluster_steps, beta=args.cluster_beta,
                                             runs_dir=Path(args.runs_dir) / "clustering", device=args.device,
                                             data_root=args.data_root, jobs=args.jobs, train=not args.report_only,
                                             dataset=args.dataset)
        if new["clustering"] is None:
            del new["clustering"]
        else:
            c = new["clustering"]
            for key in ("cluster_accuracy", "nmi", "kmeans_accuracy", "kmeans_nmi"):
                c.update(summary(c[key], key))
    command = results_header(device=args.device)["command"]
    # read the file again now: another part may have finished meanwhile
    out = json.loads(out_path.read_text()) if out_path.exists() else {}
    for name, part in new.items():  # the command that ran each part (parts run apart); a report keeps it
        if args.report_only:
            part["report_command"] = command
            if "command" in out.get(name, {}):
                part["command"] = out[name]["command"]
        else:
            part["command"] = command
    if "ebgan" in new and "ebgan" in out and out["ebgan"]["settings"] != new["ebgan"]["settings"]:
        out["ebgan_earlier"] = out.get("ebgan_earlier", []) + [out["ebgan"]]  # other settings tried: kept
    out.update(new)
    out.update(results_header(device=args.device))
    save_report(out, out_path, markdown(out))
    print(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
