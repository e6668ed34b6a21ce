"""Is ``bin/test`` slower than it was? Two commits' suites timed in one sitting: each commit checked out
into its own temporary worktree (clean: nothing built, no cache), the two suites run one after the other
in alternating order (A B B A ...), each as ``bin/test`` runs it (pytest, one worker per core), on this
environment's Python. The machine's speed drifts by a fifth from hour to hour, so two numbers taken at
different times say little; runs taken in turns do.

    python -m benchmarks.speed.suite_compare --base 76d94b1 --rounds 2   # results/test_time_compare.{json,md}

Run it on an otherwise idle machine (each suite uses every core): what else ran is recorded beside the
numbers. The data sets under ``data/`` are linked into each worktree, as a checkout that fetched them has.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.speed.suite_time import ROOT, _cpu, _running


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _worktree(rev: str, folder: Path) -> Path:
    """``rev`` checked out into ``folder`` (detached), with this checkout's data sets linked into its data/."""
    _git("worktree", "add", "--detach", "-f", str(folder), rev)
    data = ROOT / "data"
    for entry in data.iterdir() if data.is_dir() else ():
        target = folder / "data" / entry.name
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            target.symlink_to(entry.resolve())
    return folder


def _seconds(summary: str) -> float | None:
    """pytest's own duration from its last line ("... in 326.68s (0:05:26)")."""
    found = re.search(r" in ([0-9.]+)s", summary)
    return float(found.group(1)) if found else None


def time_suite(tree: Path, pytest_args: list[str]) -> dict:
    """One run of ``tree``'s suite as bin/test runs it; its wall time, pytest's time, and CPU time (pytest and
    every process it waited for)."""
    env = {k: v for k, v in os.environ.items() if k not in ("INVLAB_SITE_BUILT", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tree)  # this tree's invlab, in pytest and in every process it starts
    running = _running()
    _, before = _cpu()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    _, after = _cpu()
    summary = next((ln for ln in reversed(done.stdout.splitlines()) if " passed" in ln or " failed" in ln), "")
    if done.returncode != 0:
        raise SystemExit(f"the suite of {tree} failed ({summary or done.returncode}); its time is not a "
                         f"measurement:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return {"wall_s": wall, "pytest_s": _seconds(summary), "cpu_s": after - before, "summary": summary,
            "running_before": running}


def main(argv=None) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--head", default="HEAD", help="the commit compared with it (default: HEAD)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each suite, in turns A B B A ... (default 2)")
    p.add_argument("--out", default="results/test_time_compare.json")
    p.add_argument("pytest_args", nargs="*", help="more arguments for both suites (default: none, the whole suite)")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    revs = {"base": _git("rev-parse", "--short", args.base), "head": _git("rev-parse", "--short", args.head)}
    order = [["base", "head"] if i % 2 == 0 else ["head", "base"] for i in range(args.rounds)]
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as folder:
        trees = {k: _worktree(rev, Path(folder) / k) for k, rev in revs.items()}
        try:
            for i, pair in enumerate(order):
                for which in pair:
                    print(f"round {i + 1}/{args.rounds}: {which} ({revs[which]})", file=sys.stderr, flush=True)
                    runs[which].append(time_suite(trees[which], args.pytest_args))
        finally:
            for tree in trees.values():
                _git("worktree", "remove", "--force", str(tree))

    def median(which, key):
        return statistics.median(r[key] for r in runs[which])

    ratios = {key: median("head", key) / median("base", key) for key in ("wall_s", "cpu_s")}
    out = {"base": revs["base"], "head": revs["head"], "rounds": args.rounds, "order": order, "runs": runs,
           "ratio_wall": ratios["wall_s"], "ratio_cpu": ratios["cpu_s"], "cores": os.cpu_count(),
           "pytest_args": args.pytest_args}
    out.update(results_header(device="cpu"))
    rows = [[which, revs[which], i + 1, f"{r['wall_s'] / 60:.2f}", f"{(r['pytest_s'] or 0) / 60:.2f}",
             f"{r['cpu_s'] / 60:.2f}", r["summary"].strip("= "), r["running_before"]]
            for which in ("base", "head") for i, r in enumerate(runs[which])]
    text = ("# The test suite now and then\n\n"
            f"`bin/test{''.join(' ' + a for a in args.pytest_args)}` at {revs['base']} (base) and {revs['head']} "
            f"(head), each in a fresh worktree, {args.rounds} run(s) each in turns "
            f"({', then '.join(' '.join(pair) for pair in order)}), {os.cpu_count()} cores. "
            f"Head against base, medians: **{ratios['wall_s']:.2f}× the wall time**, "
            f"{ratios['cpu_s']:.2f}× the CPU time (pytest and every process it waited for).\n\n"
            + markdown_table(["suite", "commit", "run", "wall (min)", "pytest (min)", "CPU (min)", "result",
                              "other processes before"], rows)
            + f"\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
