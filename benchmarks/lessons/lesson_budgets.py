"""How long each lesson takes with its ``parameters`` defaults, run alone: every notebook under
``notebooks/`` executed in turn by nbclient (the runner nbmake uses under ``bin/test``), one kernel
at a time, ``OMP_NUM_THREADS`` as ``bin/test``'s workers set it (one thread), nothing else on the
machine. The README and the lessons page point at the table instead of quoting a number.

    python -m benchmarks.lessons.lesson_budgets                 # results/lesson_budgets.{json,md}
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def run(path: Path, timeout: int) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - started


def main(argv=None) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--notebooks", nargs="*", default=None, help="default: every notebooks/*.ipynb")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the kernels (bin/test's: 1)")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--out", default="results/lesson_budgets.json")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the kernels
    paths = [Path(n) for n in args.notebooks] if args.notebooks else sorted(Path("notebooks").glob("*.ipynb"))
    seconds = {}
    for path in paths:
        seconds[path.stem] = run(path, args.timeout)
        print(f"{path.stem}: {seconds[path.stem]:.1f} s", flush=True)
    out = {"threads": args.threads, "seconds": seconds, **results_header(device="cpu")}
    rows = [[name, f"{s:.0f}"] for name, s in seconds.items()]
    text = ("# The lessons' budgets\n\nEach notebook with its `parameters` defaults, executed alone by nbclient "
            f"(as nbmake runs it under `bin/test`), {args.threads} OpenMP thread(s) per kernel, kernel start "
            "included.\n\n" + markdown_table(["notebook", "seconds"], rows) + f"\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
