"""Seeing the partition (``invlab.regions``): what it costs, and what it shows between classes.

``--part cost`` (the default): the cost on this machine, for the lesson networks:
pieces per second along a segment between two MNIST test digits (a 4 and a 9, centred as the
networks see them), and grid points per second on the plane through a 4, a 9 and a 7. ``--threads``
torch threads (default 2: this machine's cores); ``--pairs`` segments per network (the k-th 4 to the
k-th 9), the plane at ``--resolution``. The targets: a segment on smallcnn-mean in at most 2 s, a
256 × 256 plane in at most 10 s.

    python -m benchmarks.regions                  # results/regions_cost.{json,md}

``--part study``: the regions crossed between test images of the same class and of different
classes (``--pair-types``, e.g. 4-9: the k-th test 4 to the k-th test 9; 4-4: the k-th 4 to the
(k + 500)-th 4), ``--pairs`` of each, for smallcnn-mean trained on 50 labels (``--seeds``: label
draws) four ways — supervised (the cross-entropy alone), with the paper's loss (eq. 10 and its
bare setting, 1000 steps), with the recipe (2000 steps), with the recipe without R (``no-r``: beta = 0,
its entropy and balance terms alone: what R itself changes) — and untrained (initialised with each
seed, raw pixels). Each trained network is the validation-selected checkpoint of its run; each
segment lies in that network's own input space (the run's per-image preprocessing applied to
the two images). Per segment: its pieces, where the predicted class changes, the pieces predicted
as the start's class, the end's and others, and the pieces within 0.05 of either end (near the
data) against those within 0.05 of the middle. Trainings and segments resume: the runs under
``--runs-dir``, the segments in JSON files beside them, written as they are walked.

    python -m benchmarks.regions --part study --jobs 2     # results/regions.{json,md}
    python -m benchmarks.regions --part report             # the report of what is done so far
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

VARIANTS = ("supervised", "paper", "recipe", "no-r", "untrained")
NEAR = 0.05  # "near the data": within this of an end of the segment (and "mid": of t = 0.5)
SAME_CLASS_OFFSET = 500  # a-a pairs: the k-th test image of class a to the (k + 500)-th, whatever --pairs is


def run_config(variant: str, seed: int):
    from invlab.train import TrainConfig

    common = dict(model="smallcnn-mean", dataset="mnist", labels_per_class=5, seed=seed, device="cpu")
    if variant == "supervised":
        return TrainConfig(method="supervised", beta=0.0, **common)  # the cross-entropy alone: no R
    if variant == "paper":
        return TrainConfig(recipe="paper", **common)
    if variant == "no-r":
        return TrainConfig(beta=0.0, **common)  # the recipe without R: the entropy and balance terms alone
    return TrainConfig(**common)  # the recipe


def run_dir(args, variant: str, seed: int) -> Path:
    from invlab.train import run_key

    return Path(args.runs_dir) / f"{variant}-seed{seed}-{run_key(run_config(variant, seed))}"


def network(args, variant: str, seed: int):
    """The network of one variant and draw, eval mode (``model.preprocess`` where it has one)."""
    import torch

    from invlab.models import create_model
    from invlab.train import load_model

    if variant == "untrained":
        torch.manual_seed(seed)
        return create_model("smallcnn-mean", input_shape=(1, 28, 28), num_classes=10).eval()
    return load_model(run_dir(args, variant, seed) / "checkpoint.pt")


def pair_images(data, pair: str, n: int):
    """(x0, x1): n test images of each end's class, raw."""
    a, b = (int(c) for c in pair.split("-"))
    of_a, of_b = (data.y_test == a).nonzero()[:, 0], (data.y_test == b).nonzero()[:, 0]
    second = of_b[SAME_CLASS_OFFSET:SAME_CLASS_OFFSET + n] if a == b else of_b[:n]
    if len(of_a) < n or len(second) < n:
        raise ValueError(f"the test set has too few images for {n} pairs of {pair}")
    return data.x_test[of_a[:n]], data.x_test[second]


def pairing_of(pair: str) -> str:
    """How the k-th segment of a pair type is chosen (kept with its segments, so a resumed walk matches)."""
    a, b = pair.split("-")
    return f"k-th {a} -> (k + {SAME_CLASS_OFFSET})-th {b}" if a == b else f"k-th {a} -> k-th {b}"


def summary(seg) -> dict:
    """What the study keeps of one segment."""
    mids = (seg.starts + seg.ends) / 2
    predicted = seg.logits_at(mids).argmax(1)
    near = ((seg.starts < NEAR) | (seg.ends > 1 - NEAR)).sum()
    middle = ((seg.ends > 0.5 - NEAR) & (seg.starts < 0.5 + NEAR)).sum()
    return {"pieces": seg.pieces, "units_changed": int(seg.units_changed.sum()),
            "decisions": [[round(t, 9), a, b] for t, a, b in seg.decisions],
            "start_class": seg.start_class, "end_class": seg.end_class,
            "pieces_start_class": int((predicted == seg.start_class).sum()),
            "pieces_end_class": int((predicted == seg.end_class).sum()) if seg.end_class != seg.start_class else 0,
            "pieces_other": int(((predicted != seg.start_class) & (predicted != seg.end_class)).sum()),
            "pieces_near_data": int(near), "pieces_mid": int(middle),
            "first_decision": seg.decisions[0][0] if seg.decisions else None}


def walk_task(task) -> str:
    """Walk the segments of one (variant, seed, pair type), appending to its JSON file as it goes."""
    import torch

    from invlab.data import load_dataset
    from invlab.io import save_json
    from invlab.regions import segment
    from invlab.viz.explain import model_input

    args, variant, seed, pair = task
    torch.set_num_threads(1)
    path = Path(args.runs_dir) / "segments" / f"{variant}-seed{seed}-{pair}.json"
    pairing = pairing_of(pair)
    done = json.loads(path.read_text()) if path.exists() else {}
    if done.get("pairing") != pairing:  # walked with another pairing (or none recorded): start again
        done = {"pairing": pairing, "segments": []}
    if len(done["segments"]) >= args.pairs:
        return f"{path.name}: done"
    data = load_dataset("mnist", labels_per_class=1, seed=0)
    model = network(args, variant, seed)
    x0, x1 = (model_input(model, x) for x in pair_images(data, pair, args.pairs))
    for k in range(len(done["segments"]), args.pairs, args.batch):
        segs = segment(model, x0[k:k + args.batch], x1[k:k + args.batch])
        segs = segs if isinstance(segs, list) else [segs]
        done["segments"] += [summary(s) for s in segs][:args.pairs - k]
        save_json(done, path)
    return f"{path.name}: {len(done['segments'])} segments"


def study(args) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from invlab.experiments.studies import run_many

    trained = [(v, s) for v in args.variants if v != "untrained" for s in args.seeds]
    if trained:
        run_many([(run_config(v, s), run_dir(args, v, s)) for v, s in trained], jobs=args.jobs,
                 name="regions", labels=[f"{v} draw {s}" for v, s in trained])
    tasks = [(args, v, s, pair) for pair in args.pair_types for s in args.seeds for v in args.variants]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for line in pool.map(walk_task, tasks):
            print(line, flush=True)
    report(args)


def spread(values: list[float]) -> str:
    import statistics

    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.fmean(values):,.0f} ± {statistics.stdev(values):,.0f}"


def pool_draws(cells: dict, variants, seeds, pair_types) -> list[dict]:
    """The report's cells (``variant/seed/pair``) pooled over the label draws, per network and pair type."""
    import statistics

    pooled = []
    for variant in variants:
        for pair in pair_types:
            got = [cells[k] for k in (f"{variant}/{seed}/{pair}" for seed in seeds) if k in cells]
            if not got:
                continue
            n = sum(c["segments"] for c in got)

            def mean(key, got=got, n=n):
                return sum(c[key] * c["segments"] for c in got) / n

            pieces = [v for c in got for v in c["pieces"]]
            draw_means = [c["pieces_mean"] for c in got]
            pooled.append({"network": variant, "pair": pair, "segments": n, "draws": len(got), "pieces": pieces,
                           "pieces_mean": statistics.fmean(pieces),
                           "pieces_std": statistics.stdev(pieces) if len(pieces) > 1 else None,
                           "draw_means": [min(draw_means), max(draw_means)],
                           "near_over_mid": mean("pieces_near_data_mean") / mean("pieces_mid_mean"),
                           "decision_changes_mean": mean("decision_changes_mean"),
                           "other_share": mean("pieces_other_mean") / mean("pieces_mean")})
    return pooled


def report(args) -> None:
    """results/regions.{json,md} from the segments walked so far (a partial study says so)."""
    import statistics

    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    cells, rows, missing = {}, [], 0
    for variant in args.variants:
        for seed in args.seeds:
            for pair in args.pair_types:
                path = Path(args.runs_dir) / "segments" / f"{variant}-seed{seed}-{pair}.json"
                saved = json.loads(path.read_text()) if path.exists() else {}
                segs = saved.get("segments", []) if saved.get("pairing") == pairing_of(pair) else []
                missing += max(args.pairs - len(segs), 0)
                if not segs:
                    continue
                pieces = [s["pieces"] for s in segs]
                first = [s["first_decision"] for s in segs if s["first_decision"] is not None
                         and s["start_class"] != s["end_class"]]
                cell = {"segments": len(segs), "pieces": pieces,
                        "pieces_mean": statistics.fmean(pieces),
                        "pieces_std": statistics.stdev(pieces) if len(pieces) > 1 else None,
                        "pieces_near_data_mean": statistics.fmean(s["pieces_near_data"] for s in segs),
                        "pieces_mid_mean": statistics.fmean(s["pieces_mid"] for s in segs),
                        "first_decision_mean": statistics.fmean(first) if first else None,
                        "first_decision_std": statistics.stdev(first) if len(first) > 1 else None,
                        "ends_differ": sum(s["start_class"] != s["end_class"] for s in segs),
                        "decision_changes_mean": statistics.fmean(len(s["decisions"]) for s in segs),
                        "pieces_start_class_mean": statistics.fmean(s["pieces_start_class"] for s in segs),
                        "pieces_end_class_mean": statistics.fmean(s["pieces_end_class"] for s in segs),
                        "pieces_other_mean": statistics.fmean(s["pieces_other"] for s in segs)}
                cells[f"{variant}/{seed}/{pair}"] = cell
                rows.append([variant, seed, pair, len(segs), spread(pieces),
                             f"{cell['pieces_near_data_mean']:,.0f} / {cell['pieces_mid_mean']:,.0f}",
                             "—" if cell["first_decision_mean"] is None else
                             f"{cell['first_decision_mean']:.3f}" + (f" ± {cell['first_decision_std']:.3f}"
                                                                     if cell["first_decision_std"] else ""),
                             f"{cell['decision_changes_mean']:.2f}",
                             f"{cell['pieces_start_class_mean']:,.0f} / {cell['pieces_end_class_mean']:,.0f} / "
                             f"{cell['pieces_other_mean']:,.0f}"])
    pooled = pool_draws(cells, args.variants, args.seeds, args.pair_types)
    out = {"pairs": args.pairs, "pair_types": args.pair_types, "seeds": args.seeds, "variants": list(args.variants),
           "near": NEAR, "complete": missing == 0, "segments_missing": missing, "cells": cells, "pooled": pooled}
    out.update(results_header(device="cpu"))
    status = ("" if missing == 0 else
              f"**Partial**: {missing:,} of the planned segments are not walked yet (rerun the command to go on).\n\n")
    text = ("# Regions crossed between test images\n\n" + status
            + f"smallcnn-mean on MNIST with 50 labels; label draws (seeds) {args.seeds}; {args.pairs} pairs of test "
            "images per pair type (a-b: the k-th test image of class a to the k-th of class b; a-a: the k-th to the "
            f"(k + {SAME_CLASS_OFFSET})-th), each segment in its network's own input space, walked exactly in float64 "
            "(`invlab.regions.segment`). Pieces: mean ± sample std over the pairs. Near the data / middle: pieces "
            f"meeting t < {NEAR} or t > {1 - NEAR}, and 0.5 ± {NEAR}. Decision: the first t where the predicted "
            "class changes, over the pairs whose ends are predicted differently. Pieces by class: predicted as the "
            "start's class / the end's / another.\n\n"
            + "## Over the label draws\n\nEach network and pair type with its draws pooled: the pieces' mean ± "
            "sample std over every pair of every draw, and the lowest and highest of the draws' means; near the data "
            "/ middle as the ratio of the two pooled means; the share of pieces predicted as neither end's class.\n\n"
            + markdown_table(["network", "pair", "pairs", "pieces", "draws' means", "near the data / middle",
                              "decision changes", "pieces of another class"],
                             [[v["network"], v["pair"], v["segments"], spread(v["pieces"]),
                               f"{v['draw_means'][0]:,.0f} – {v['draw_means'][1]:,.0f}",
                               f"{v['near_over_mid']:.2f}", f"{v['decision_changes_mean']:.2f}",
                               f"{v['other_share']:.1%}"] for v in pooled])
            + "\n\n## Per label draw\n\n"
            + markdown_table(["network", "draw", "pair", "pairs", "pieces", "near the data / middle",
                              "first decision (t)", "decision changes", "pieces by class"], rows)
            + f"\n\n{provenance_line(out, '1 torch thread per process')}\n")
    save_report(out, args.out, text)
    print(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("cost", "study", "report"), default="cost")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 4, 0, 2])
    p.add_argument("--pair-types", nargs="+", default=["4-9", "4-4", "3-8"])
    p.add_argument("--batch", type=int, default=4, help="segments walked together")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--runs-dir", default="runs/regions_study")
    args, rest = p.parse_known_args(argv)
    if args.part == "cost":
        return cost(rest)
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--out", default="results/regions.json")
    args = p.parse_args(argv)
    return study(args) if args.part == "study" else report(args)


def cost(argv=None) -> None:
    import torch

    from invlab.data import load_dataset
    from invlab.io import markdown_table, save_report
    from invlab.lessons import lesson_model
    from invlab.regions import plane, segment
    from invlab.training.provenance import provenance_line, results_header
    from invlab.viz.explain import model_input

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["smallcnn-mean", "smallcnn-max", "smallucnn"])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/regions_cost.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist", labels_per_class=1, seed=0)

    def digits(cls, n):
        return data.x_test[(data.y_test == cls).nonzero()[:n, 0]]

    fours, nines, sevens = digits(4, args.pairs), digits(9, args.pairs), digits(7, 1)
    out, rows = {"pairs": args.pairs, "resolution": args.resolution, "threads": args.threads, "models": {}}, []
    for name in args.models:
        model = lesson_model(name, "mnist").eval()
        x4, x9, x7 = model_input(model, fours), model_input(model, nines), model_input(model, sevens)
        segment(model, x4[:1], 0.99 * x4[:1] + 0.01 * x9[:1])  # warm-up: the kernels' first calls
        seconds, pieces = [], []
        for k in range(args.pairs):
            t0 = time.perf_counter()
            seg = segment(model, x4[k:k + 1], x9[k:k + 1])
            seconds.append(time.perf_counter() - t0)
            pieces.append(seg.pieces)
        t0 = time.perf_counter()
        pl = plane(model, x4[:1], x9[:1], x7, resolution=args.resolution)
        plane_s = time.perf_counter() - t0
        rate = [n / s for n, s in zip(pieces, seconds)]
        out["models"][name] = {"segment_s": seconds, "pieces": pieces, "pieces_per_s": rate, "plane_s": plane_s,
                               "plane_points_per_s": args.resolution ** 2 / plane_s, "plane_regions": pl.count}
        rows.append([name, ", ".join(f"{n:,}" for n in pieces), ", ".join(f"{s:.1f}" for s in seconds),
                     f"{statistics.median(rate):,.0f}", f"{plane_s:.1f}", f"{args.resolution ** 2 / plane_s:,.0f}",
                     f"{pl.count:,}"])
        print(rows[-1], flush=True)
    out.update(results_header(device="cpu"))
    text = ("# The cost of seeing the partition\n\n"
            f"`invlab.regions` on the lesson networks, {args.threads} torch thread(s), in float64: a ReLU "
            "network's segment swept level by level (smallcnn-mean), the others walked piece by piece. "
            "Segments: the k-th test 4 to "
            f"the k-th test 9 (k < {args.pairs}), centred as the networks see them; the plane through the first 4, "
            f"the first 9 and the first 7 at {args.resolution} × {args.resolution} points over the three's span "
            "(at this scale nearly every grid point lies in a region of its own).\n\n"
            + markdown_table(["network", "pieces per segment", "seconds per segment", "pieces / s (median)",
                              "plane (s)", "grid points / s", "regions on the plane"], rows)
            + f"\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
