"""Command line: ``invlab train``, ``invlab data fetch mnist``, ``invlab models``, ``invlab sweep``,
``invlab export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from invlab.data import fetch_dataset, fetchable_datasets, list_datasets, load_dataset
from invlab.models import list_models
from invlab.training.config import RECIPES, TrainConfig
from invlab.training.options import add_config_options, config_kwargs, dataset_arg
from invlab.training.trainer import train

EPILOG = """\
example (the paper's SmallCNN with 50 labels, 5 per class):
  invlab train --model smallcnn-mean --labels 50 --alpha 0.7 --beta 0.2 --seed 0 --steps 1000 --out runs/demo

loss (paper eq. 10): alpha * CE on labelled samples
                    + (1 - alpha) * [beta * R on all samples + (1 - beta) * entropy on unlabelled ones]

R is the reconstruction error of the network's inverse (df/dx)^T f(x), f = the logits.

defaults: the recommended recipe (cosine, center-maxabs, balance 1, 2000 steps), the same as
TrainConfig() in Python; --recipe paper gives the paper's bare eq. 10 (constant, none, 0, 1000).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="invlab", description="Semi-supervised learning via deep-network inversion.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a network with the paper's semi-supervised loss",
        description="Train on any data set of `invlab data list` with a few labels; writes OUT/metrics.json, "
        "OUT/checkpoint.pt, OUT/reconstructions.png, OUT/learning_curves.html.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Every TrainConfig field is an option (invlab.training.options) with TrainConfig's default; the fields a
    # recipe fills default to None so that --recipe fills them as TrainConfig does; --labels and the output
    # folder's options are the command line's own.
    add_config_options(t, TrainConfig(), overrides={"labels_per_class": None, "beta": None,  # per data set / method
                                                    **dict.fromkeys(RECIPES["paper"])})
    t.add_argument("--labels", default=None, metavar="N|all",
                   help="labelled training examples in total, split evenly over the data set's classes, or 'all' "
                        "(default: 5 per class, all on bird10; or give --labels-per-class)")
    t.add_argument("--out", required=True, metavar="DIR", help="output folder")
    t.add_argument("--resume", action="store_true", help="continue the run in DIR from DIR/checkpoint.pt")
    t.add_argument("--overwrite", action="store_true", help="replace a run that DIR already holds")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--checkpoint-every", default=None, metavar="STEPS|Nm",
                   help="write DIR/checkpoint.pt every STEPS steps, or every N minutes (10m) (default: at every "
                        "evaluation and at least every 5 minutes); Ctrl-C or SIGTERM also writes one and says how "
                        "to resume")

    data = sub.add_parser("data", help="fetch datasets").add_subparsers(dest="data_command", required=True)
    f = data.add_parser("fetch", help="download (or find offline) and verify a data set into the data folder")
    f.add_argument("name", choices=fetchable_datasets())
    f.add_argument("--root", default=None, help="folder (default: $INVLAB_DATA, else the checkout's data/, else "
                                                "~/.cache/invlab; torchvision's data sets in its NAME/ subfolder)")
    f.add_argument("--force", action="store_true", help="rebuild the cache from its verified source (a corrupt cache)")
    data.add_parser("list", help="the data sets invlab knows by name")
    m = sub.add_parser("models", help="list the available networks: topology, pooling, parameters, input shape")
    m.add_argument("--dataset", default=None, type=dataset_arg, metavar="NAME",
                   help="size every network for this data set (its input shape and classes); networks that cannot "
                        "take its input say why")
    m.add_argument("--data-root", default=None, metavar="DIR", help="the data set's folder")
    m.add_argument("--resize", type=int, nargs=2, default=None, metavar=("H", "W"), help="as for invlab train")
    _sweep_parser(sub)
    e = sub.add_parser(
        "export",
        help="a network's spline view (templates, reconstruction, activation pattern) as one "
        "ONNX graph, for the site's explorer or any ONNX runtime",
        description="Write the network of CHECKPOINT (or a lesson network, or a network of your own with "
        "--model-file) as one ONNX graph: input x, one raw example (1, C, H, W) or (1, C, L); outputs input, "
        "logits, probabilities, templates, bias, reconstruction, pattern (and classes with --top-k; see "
        "invlab.export). Drop the file on the site's Explore page. A layer that is not piecewise affine is "
        "refused by name before anything is written.",
        epilog="example (a torchvision ResNet-18 of your own):\n"
               "  invlab export --model-file nets.py:resnet18 --weights resnet18.pt --input-shape 3 32 32 \\\n"
               "      --class-names plane,car,bird,cat,deer,dog,frog,horse,ship,truck --onnx resnet18.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("checkpoint", nargs="?", default=None, metavar="CHECKPOINT",
                   help="a checkpoint.pt written by invlab train (or give --lesson)")
    e.add_argument("--lesson", default=None, metavar="MODEL", help="a lesson network instead: smallcnn-mean, "
                                                                   "smallcnn-max or smallucnn (with --dataset)")
    e.add_argument("--dataset", default="mnist", metavar="NAME", help="the lesson network's data set (default mnist)")
    e.add_argument("--model-file", default=None, metavar="FILE.py:FACTORY",
                   help="a network invlab never trained: FACTORY() in FILE.py returns the nn.Module (offered "
                        "input_shape and, with --class-names, num_classes), as for invlab train --model-file")
    e.add_argument("--weights", default=None, metavar="STATE_DICT.pt",
                   help="with --model-file: its weights, torch.save(model.state_dict(), FILE) (read with "
                        "weights_only=True)")
    e.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="N",
                   help="with --model-file: one example's shape, C H W (images) or C L (signals)")
    e.add_argument("--class-names", default=None, metavar="a,b,...",
                   help="with --model-file: the classes' names, comma-separated (recorded in the graph)")
    e.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="keep the templates of the K most probable classes only (a network of many classes); "
                        "adds the output classes")
    e.add_argument("--regions", action="store_true",
                   help="also carry the segment-walking graph (invlab.export.SegmentWalk) for the Explore page's "
                        "regions view: the pieces of the segment between two inputs, found in the browser; a ReLU "
                        "network's file also carries the sweep's graphs (SegmentPoints, SegmentTail), faster")
    e.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    return p


def _export(args) -> int:
    from invlab.export import export_checkpoint, export_model_file

    if sum(v is not None for v in (args.checkpoint, args.lesson, args.model_file)) != 1:
        raise ValueError("give a CHECKPOINT, --lesson MODEL or --model-file FILE.py:FACTORY (one of them)")
    if args.model_file is None and any(v is not None for v in (args.weights, args.input_shape, args.class_names)):
        raise ValueError("--weights, --input-shape and --class-names go with --model-file (a checkpoint records them)")
    if args.model_file is not None:
        if args.input_shape is None or len(args.input_shape) not in (2, 3):
            raise ValueError("--model-file needs --input-shape C H W (images) or C L (signals)")
        names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
        path = export_model_file(args.model_file, args.onnx, tuple(args.input_shape), args.weights, names, args.top_k,
                                 regions=args.regions)
        print(f"{path}  ({path.stat().st_size / 1e6:.2f} MB): open the site's Explore page and drop it there")
        return 0
    if args.lesson is not None:
        from invlab.lessons import lesson_checkpoint

        checkpoint = lesson_checkpoint(args.lesson, args.dataset)
    else:
        checkpoint = Path(args.checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint} does not exist (a checkpoint.pt written by invlab train)")
    path = export_checkpoint(checkpoint, args.onnx, top_k=args.top_k, regions=args.regions)
    print(f"{path}  ({path.stat().st_size / 1e6:.2f} MB): open the site's Explore page and drop it there")
    return 0


def _sweep_parser(sub) -> None:
    """``invlab sweep create|work|report`` (see invlab.experiments.sweep)."""
    from invlab.experiments.sweep import DEFAULT_STORAGE, PRUNERS, SPACES

    sw = sub.add_parser("sweep", help="Optuna studies of many trainings: create once, run workers anywhere, report",
                        description="A study in an Optuna storage (SQLite by default, PostgreSQL across hosts); "
                                    "see invlab.experiments.sweep and the README's 'Scaling out'.")
    verbs = sw.add_subparsers(dest="sweep_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--study", required=True, help="study name")
    common.add_argument("--storage", default=None,
                        help=f"Optuna storage URL (default {DEFAULT_STORAGE}; several hosts: "
                             "postgresql+psycopg://USER@HOST/DB)")
    c = verbs.add_parser("create", parents=[common], help="create the study once; a grid's points are enqueued")
    c.add_argument("--space", required=True, help=f"{', '.join(SPACES)}, or a JSON/YAML space file")
    c.add_argument("--steps", type=int, default=None, help="training budget of every trial (smoke runs)")
    c.add_argument("--dataset", default=None, type=dataset_arg, metavar="NAME",
                   help="run every trial on this data set (a name of `invlab data list`; default: the space's)")
    c.add_argument("--data-root", default=None, metavar="DIR", help="the data set's folder")
    c.add_argument("--pruner", default=None, choices=PRUNERS,
                   help="stop unpromising trials early on their validation accuracy at each evaluation "
                        "(Optuna's pruners; recorded in the study; default none)")
    c.add_argument("--min-resource", type=int, default=None, metavar="STEPS",
                   help="pruning: steps before the first cut (default a quarter of the budget)")
    c.add_argument("--reduction-factor", type=int, default=2, metavar="ETA",
                   help="successive-halving, hyperband: keep the top 1/ETA at each rung (default %(default)s)")
    c.add_argument("--startup-trials", type=int, default=None, metavar="N",
                   help="search spaces: the TPE sampler's random start-up trials (default Optuna's 10)")
    w = verbs.add_parser("work", parents=[common], help="run trials until the study is done (one worker per GPU)")
    w.add_argument("--trials", type=int, default=None, help="stop after N trials here (required for a search)")
    w.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K (default %(default)s)")
    w.add_argument("--steps", type=int, default=None, help="override every trial's training budget (recorded)")
    w.add_argument("--runs-dir", default="runs/sweeps", help="trial folders, keyed by config (default %(default)s)")
    w.add_argument("--heartbeat", type=int, default=60,
                   help="seconds between a running trial's heartbeats; a trial silent for twice that is failed "
                        "and retried from its checkpoint (default %(default)s)")
    r = verbs.add_parser("report", parents=[common], help="tables (JSON, Markdown) and figures of the study")
    r.add_argument("--out", default=None, help="results JSON (default results/sweep_<study>.json)")
    r.add_argument("--figures", default=None, help="figure folder (default docs/figures/sweep_<study>)")


def _sweep(args) -> int:
    from invlab.experiments import sweep

    if args.sweep_command == "create":
        n = sweep.create(args.study, args.storage, args.space, steps=args.steps, dataset=args.dataset,
                         data_root=args.data_root, pruner=args.pruner, min_resource=args.min_resource,
                         reduction_factor=args.reduction_factor, startup_trials=args.startup_trials)
        print(f"created study {args.study!r} in {sweep.storage_url(args.storage)}"
              + (f" with {n} grid points enqueued" if n else " (a search: give workers --trials)")
              + (f", pruner {args.pruner}" if args.pruner else ""))
    elif args.sweep_command == "work":
        from invlab.training.guard import RunInterrupted

        try:
            n = sweep.work(args.study, args.storage, trials=args.trials, device=args.device, steps=args.steps,
                           runs_dir=args.runs_dir, heartbeat=args.heartbeat)
        except RunInterrupted as stop:
            print(f"worker stopped by {stop.signal_name} at step {stop.step} of its trial; the trial is queued "
                  f"again and the next `invlab sweep work` resumes it from {stop.folder}", file=sys.stderr, flush=True)
            return stop.exit_code
        print(f"worker done: {n} trial(s) run here")
    else:
        out = args.out or f"results/sweep_{args.study}.json"
        res = sweep.report(args.study, args.storage, out, args.figures or f"docs/figures/sweep_{args.study}")
        print(sweep.markdown(res))
        print(f"wrote {out}")
    return 0


def labels_per_class(args) -> int | None:
    """``--labels N|all`` / ``--labels-per-class K`` as labelled examples per class of the
    data set (whose class count is read from the data); default 5, all on bird10."""
    if args.labels_per_class is not None:
        return args.labels_per_class
    if args.labels is None:
        return None if args.dataset == "bird10" else 5
    if args.labels == "all":
        return None
    n = int(args.labels) if args.labels.lstrip("-").isdigit() else -1
    data = load_dataset(args.dataset, None, args.seed, args.val_size, root=args.data_root,
                        resize=tuple(args.resize) if args.resize else None)
    classes = data.num_classes
    if n < 1 or n % classes:
        raise ValueError(f"--labels {args.labels}: {args.dataset} has {classes} classes and the labelled set is "
                         f"class-balanced: use a positive multiple of {classes}, --labels-per-class K, or 'all'")
    return n // classes


def train_config(args) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``invlab train`` options: the flags mapped to fields, every
    default and check left to TrainConfig (so Python and the command line train the same run)."""
    if args.model_file is None and args.model not in list_models():
        raise ValueError(f"unknown model {args.model!r}. Known models: {', '.join(list_models())} "
                         "(or a network of your own: --model-file FILE.py:FACTORY)")
    if args.labels is not None and args.labels_per_class is not None:
        raise ValueError("give --labels or --labels-per-class, not both")
    fields = config_kwargs(args, TrainConfig)
    # with --model-file, TrainConfig makes the model "custom" (or refuses a --model beside it)
    fields.update(model=args.model, labels_per_class=labels_per_class(args))
    return TrainConfig(**fields)


def _train(args) -> int:
    import torch

    config = train_config(args)
    out = Path(args.out)
    result = train(config, out_dir=out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                   checkpoint_every=args.checkpoint_every)
    if result.interrupted:
        import shlex
        import signal

        from invlab.training.guard import EXIT_CODES

        again = [a for a in args.argv if a not in ("--resume", "--overwrite")] + ["--resume"]
        print(f"interrupted at step {result.steps_done} of {config.total_steps(len(result.data_ref.x_train))}; "
              f"continue with: invlab {shlex.join(again)}", file=sys.stderr, flush=True)
        return EXIT_CODES[signal.Signals[result.stop_signal]]
    # imported only for a finished run: the figures need torchvision, whose import (it loads
    # torch._dynamo) costs seconds that an interrupted or refused run need not spend
    from invlab.inverse import reconstruct
    from invlab.viz.plots import learning_curves, save_figure_html, save_reconstruction_figure, waveform_rows

    data, dataset = result.data_ref, result.data["dataset"]
    if len(data.x_test.shape) == 4:
        figure = save_reconstruction_figure(result.model, data.x_test[:16], out / "reconstructions.png")
    else:
        x = data.x_test[torch.linspace(0, len(data.x_test) - 1, 6).long()]
        rec = reconstruct(result.model.eval(), x, create_graph=False)
        figure = save_figure_html(waveform_rows(x, rec, title=f"{dataset}: test segments and reconstructions"),
                                  out / "reconstructions.html")
    save_figure_html(
        learning_curves(result.history, title=f"{dataset}, {config.model}, alpha={config.alpha}, beta={config.beta}"),
        out / "learning_curves.html",
    )
    per_recording = result.extra.get("test_recording_accuracy")
    print(f"[{dataset}] test accuracy {result.test_accuracy:.2f}% (model selected at step {result.best_step} "
          f"on validation accuracy {result.best_val_accuracy:.2f}%; last step {result.final_test_accuracy:.2f}%)"
          + (f", per recording {per_recording:.2f}%" if per_recording is not None else "")
          + f" in {result.wall_time_s:.0f} s on {result.device}")
    print(f"wrote {out / 'metrics.json'}, {out / 'checkpoint.pt'}, {figure}, {out / 'learning_curves.html'}")
    return 0


def models_table(dataset: str | None = None, data_root: str | None = None, resize=None) -> str:
    """One line per registered network: name, topology, pooling, nonlinearity, biases,
    parameter count and input shape (C, H, W) or (C, T): each network's default, or sized
    for ``dataset`` (its input shape and class count), where a network that cannot take
    that input says why."""
    import torch.nn as nn

    from invlab.models import create_model
    from invlab.models.layers import LocalWinnerTakesAll

    shape = classes = None
    lines = []
    if dataset is not None:
        data = load_dataset(dataset, None, 0, None, root=data_root, resize=tuple(resize) if resize else None)
        shape, classes = data.input_shape, data.num_classes
        lines.append(f"{dataset}: input {shape}, {classes} classes")
    for name in list_models():
        try:
            model = create_model(name, input_shape=shape, num_classes=classes)
        except ValueError as err:
            lines.append(f"{name:16s} cannot take {shape}: {str(err).removeprefix(f'model {name!r} ')}")
            continue
        mods = list(model.modules())
        pool = ("max" if any(isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) for m in mods) else
                "mean" if any(isinstance(m, nn.AvgPool2d) for m in mods) else "global mean")
        act = "inhibitor (LWTA)" if any(isinstance(m, LocalWinnerTakesAll) for m in mods) else "ReLU"
        bias = "biases" if any(n.endswith("bias") for n, _ in model.named_parameters()) else "no biases"
        n_params = sum(p.numel() for p in model.parameters())
        lines.append(f"{name:16s} {type(model).__name__:9s} pool {pool:11s} {act:16s} {bias:9s} "
                     f"{n_params:>10,d} parameters  input {model.input_shape}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what was typed: the resume line repeats it
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "data":
            if args.data_command == "list":
                print("\n".join(list_datasets()))
            else:
                print(fetch_dataset(args.name, args.root, force=args.force))
            return 0
        if args.command == "models":
            print(models_table(args.dataset, args.data_root, args.resize))
            return 0
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "export":
            return _export(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError, RuntimeError) as err:
        print(f"invlab: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
