"""What exporting a lesson network costs, with and without the exporter's table kept between exports.

``torch.onnx.export`` (dynamo) builds its table of ATen -> ONNX functions anew at every call;
``invlab.export`` keeps it for the process (``_torchlib_tables_kept``). This exports each lesson network
with its segment-walking graph (``to_onnx(..., regions=True)``: two exports, as the site's build does) both
ways, interleaved in one process after a warm-up, and reports the CPU time of each (median and range over
the repeats) and whether the files are byte for byte the same.

    python -m benchmarks.speed.export_cost        # results/export_cost.{json,md}

Run it on an otherwise idle machine: the load before the run is recorded beside the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path


def main(argv=None) -> None:
    import torch

    import invlab.export as export
    from invlab.io import markdown_table, save_report
    from invlab.lessons import lesson_model
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", default=["mnist/smallcnn-mean", "mnist/smallcnn-max", "mnist/smallucnn"],
                   help="lesson networks as DATASET/MODEL")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="results/export_cost.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    kept_tables = export._torchlib_tables_kept
    kept, own = "table kept", "torch's own, per call"
    ways = {kept: kept_tables, own: contextlib.nullcontext}
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.networks:
            dataset, model_name = name.split("/")
            model = lesson_model(model_name, dataset).eval()
            export.to_onnx(model, Path(folder) / "warm.onnx", input_shape=(1, 28, 28), regions=True)
            cpu = {way: [] for way in ways}
            digests = {way: set() for way in ways}
            try:
                for _ in range(args.repeats):
                    for way, context in ways.items():  # interleaved: the two ways see the same machine
                        export._torchlib_tables_kept = context
                        path = Path(folder) / "net.onnx"
                        start = time.process_time()
                        export.to_onnx(model, path, input_shape=(1, 28, 28), regions=True)
                        cpu[way].append(time.process_time() - start)
                        digests[way].add(hashlib.sha256(path.read_bytes()).hexdigest())
            finally:
                export._torchlib_tables_kept = kept_tables
            same = len(digests[kept] | digests[own]) == 1
            results[name] = {"cpu_s": cpu, "same_bytes": same}
            medians = {way: statistics.median(v) for way, v in cpu.items()}
            rows.append([name] + [f"{medians[w]:.2f} ({min(cpu[w]):.2f}–{max(cpu[w]):.2f})" for w in ways]
                        + [f"{medians[kept] / medians[own]:.2f}",
                           "yes" if same else "NO"])
            print(rows[-1], flush=True)
    out = {"networks": results, "repeats": args.repeats, "threads": args.threads, "load_average_before": load}
    out.update(results_header(device="cpu"))
    text = ("# What exporting a lesson network costs\n\n"
            "`to_onnx(network, path, regions=True)` (the network's graph and its segment-walking graph: two "
            "`torch.onnx.export` calls), CPU seconds per call: median (lowest–highest) over "
            f"{args.repeats} repeats after a warm-up, the two ways interleaved in one process on {args.threads} "
            f"thread(s); the load average before the run: {load:.2f}.\n\n"
            + markdown_table(["network", *ways, "kept / own", "same bytes"], rows)
            + f"\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
