"""The cost of seeing the partition (``invlab.regions``) on this machine, for the lesson networks:
pieces per second along a segment between two MNIST test digits (a 4 and a 9, centred as the
networks see them), and grid points per second on the plane through a 4, a 9 and a 7. ``--threads``
torch threads (default 2: this machine's cores); ``--pairs`` segments per network (the k-th 4 to the
k-th 9), the plane at ``--resolution``. The targets: a segment on smallcnn-mean in at most 2 s, a
256 × 256 plane in at most 10 s.

    python -m benchmarks.regions                  # results/regions_cost.{json,md}

(The study of the partition between classes, with and without R, is not here yet.)
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv=None) -> None:
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
            f"`invlab.regions` on the lesson networks, {args.threads} torch thread(s), float64 walks. "
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
