"""How long ``bin/test`` takes, and where its CPU time goes: the whole suite run once as the README runs it
(every core's pytest-xdist worker), its wall time and CPU time (the workers and every process they waited
for: kernels, CLI runs, sweep workers, the site's build), and each test's CPU time, read by this module
loaded into every worker as a pytest plugin. On 2 cores the workers share them with the processes they
start, so a test's wall time depends on what ran beside it; its CPU time much less.

    python -m benchmarks.speed.suite_time          # results/test_time.{json,md}

Run it on an otherwise idle machine: what else ran when it started is recorded beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_FOLDER = "INVLAB_SUITE_TIME_DIR"  # set: the plugin records each test's CPU time into this folder


def _running() -> int | None:
    """Processes running or runnable now besides this one (Linux's /proc/loadavg), None where unknown: the
    load average lags a minute behind, this does not."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1
    except (OSError, IndexError, ValueError):
        return None


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


# -- the plugin (pytest loads this module with -p benchmarks.speed.suite_time) ------------------------------

_records: list[dict] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # noqa: ARG001 (pytest's hook signature)
    """Each test's CPU time, its setup and teardown included, and its wall time."""
    (own, children), wall, start = _cpu(), time.perf_counter(), time.time()
    yield
    if os.environ.get(_FOLDER):
        own2, children2 = _cpu()
        _records.append({"test": item.nodeid, "cpu_s": own2 - own + children2 - children,
                         "wall_s": time.perf_counter() - wall, "start": start,
                         "worker": getattr(item.config, "workerinput", {}).get("workerid", "main")})


def pytest_sessionfinish(session):  # noqa: ARG001
    folder = os.environ.get(_FOLDER)
    if folder and _records:
        Path(folder, f"tests-{os.getpid()}.json").write_text(json.dumps(_records))


# -- the run ------------------------------------------------------------------------------------------------


def _idle_jiffies() -> tuple[int, int] | None:
    """(idle, total) CPU time of the whole machine so far, in clock ticks (Linux's /proc/stat), None where unknown."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user ... steal


class _IdleSampler(threading.Thread):
    """The machine's idle share, every ``every`` seconds while the suite runs: [(time, idle share)]."""

    def __init__(self, every: float = 1.0):
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self):
        last = _idle_jiffies()
        while last is not None and not self.stop.wait(self.every):
            now = _idle_jiffies()
            if now is None:
                return
            self.samples.append((time.time(), (now[0] - last[0]) / max(1, now[1] - last[1])))
            last = now


def _timeline(records: list[dict], samples: list, started: float, ended: float) -> dict:
    """Where the cores waited: the idle share of the whole run, of its start (before the first test), of its
    end (after the first worker took its last test), and while both ran; each worker's busy time."""
    workers: dict[str, list[float]] = defaultdict(lambda: [float("inf"), 0.0, 0.0])
    for r in records:
        w = workers[r["worker"]]
        w[0], w[1], w[2] = min(w[0], r["start"]), max(w[1], r["start"] + r["wall_s"]), w[2] + r["wall_s"]
    first_test = min((w[0] for w in workers.values()), default=started)
    first_done = min((w[1] for w in workers.values()), default=ended)

    def idle(a, b):
        part = [share for t, share in samples if a < t <= b]
        return (sum(part) / len(part) if part else None), b - a

    return {"idle_share": idle(started, ended)[0],
            "phases": {"start": idle(started, first_test), "both workers": idle(first_test, first_done),
                       "end": idle(first_done, ended)},
            "workers": {k: {"first_test_s": v[0] - started, "last_test_done_s": v[1] - started, "busy_s": v[2]}
                        for k, v in sorted(workers.items())}}


def _idle_text(timeline: dict) -> str:
    if timeline["idle_share"] is None:
        return ""
    phases = "; ".join(f"{name} ({span:.0f} s): {share:.0%}" for name, (share, span) in timeline["phases"].items()
                       if share is not None)
    busy = ", ".join(f"{k} busy {v['busy_s']:.0f} s, its last test done at {v['last_test_done_s']:.0f} s"
                     for k, v in timeline["workers"].items())
    return (f"The cores stood idle {timeline['idle_share']:.0%} of the run (sampled every second from "
            f"/proc/stat): {phases}. Workers: {busy}.\n\n")


def main(argv=None) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--top", type=int, default=15, help="the tests and files listed, by CPU time")
    p.add_argument("--out", default="results/test_time.json")
    p.add_argument("pytest_args", nargs="*", help="more arguments for bin/test (default: none, the whole suite)")
    args = p.parse_args(argv)
    load, running = os.getloadavg()[0], _running()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, _FOLDER: folder, "PYTHONPATH": str(ROOT)}
        _, before = _cpu()
        sampler = _IdleSampler()
        started, epoch = time.perf_counter(), time.time()
        sampler.start()
        command = [str(ROOT / "bin" / "test"), "-p", "benchmarks.speed.suite_time", "-q", *args.pytest_args]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        _, after = _cpu()
        records = [r for f in sorted(Path(folder).glob("tests-*.json")) for r in json.loads(f.read_text())]
    summary = next((ln for ln in reversed(done.stdout.splitlines()) if " passed" in ln or " failed" in ln), "")
    if done.returncode != 0:
        raise SystemExit(f"bin/test failed ({summary or done.returncode}); its time is not a measurement:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-2000:]}")
    by_file: dict[str, float] = defaultdict(float)
    for r in records:
        by_file[r["test"].split("::")[0]] += r["cpu_s"]
    slowest = sorted(records, key=lambda r: -r["cpu_s"])[:args.top]
    out = {"wall_s": wall, "cpu_s": after - before, "tests": len(records), "summary": summary,
           "load_average_before": load, "running_before": running, "cores": os.cpu_count(), "per_test": records,
           "per_file_cpu_s": dict(sorted(by_file.items(), key=lambda kv: -kv[1])),
           "timeline": _timeline(records, sampler.samples, epoch, epoch + wall)}
    out.update(results_header(device="cpu"))
    text = ("# How long the test suite takes\n\n"
            f"`{' '.join(['bin/test', *args.pytest_args])}`"
            + ("" if args.pytest_args else " (the README's test command), the whole suite once")
            + f": **{wall / 60:.1f} minutes** of wall "
            f"time, {out['cpu_s'] / 60:.1f} minutes of CPU time over {os.cpu_count()} cores ({summary}). "
            f"Before the run: {running if running is not None else 'an unknown number of'} other processes running "
            f"(the load average, which lags a minute behind: {load:.2f}). A test's CPU time counts its worker and "
            "the processes it waited for (kernels, CLI runs, sweep workers); a browser's and a server's, once they "
            "stop.\n\n"
            + _idle_text(out["timeline"])
            + "## The tests that use most CPU time\n\n"
            + markdown_table(["test", "CPU (s)", "wall (s)"],
                             [[r["test"], f"{r['cpu_s']:.1f}", f"{r['wall_s']:.1f}"] for r in slowest])
            + "\n\n## By file\n\n"
            + markdown_table(["file", "CPU (s)"],
                             [[k, f"{v:.1f}"] for k, v in list(out["per_file_cpu_s"].items())[:args.top]])
            + f"\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
