"""Provenance of a result: how it was made, written beside every number invlab saves.

:func:`provenance` gives the command line, the git commit (and whether the working tree
had uncommitted changes), the versions of invlab, torch and Python, the torch thread
count, the device (CPU model or GPU name), the instruction set of torch's CPU kernels and
the UTC date. ``metrics.json`` of every training run and every results JSON of the
benchmarks carry it as ``"provenance"``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

_REPO = Path(__file__).resolve().parents[2]  # the checkout: invlab/training/provenance.py


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, cwd=_REPO, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str | torch.device = "cpu", detail: bool = False) -> str:
    """The one description of where a result was made. ``detail=False``: a line for results
    tables (CPU architecture and cores, or the GPU's name, with the torch version);
    ``detail=True``: the GPU's name, or the CPU's model with its core count (provenance)."""
    gpu = str(device).startswith("cuda") and torch.cuda.is_available()
    if detail:
        return torch.cuda.get_device_name(torch.device(device)) if gpu else f"{cpu_model()} ({os.cpu_count()} cores)"
    if gpu:
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__.split('+')[0]}"


def _portable(argv: list[str]) -> list[str]:
    """The command as one would type it in the checkout: a script of the checkout by its
    relative path, a module of the benchmarks package as ``python -m benchmarks.NAME``
    (``python -m`` puts the file's absolute path in argv[0], a path of this machine)."""
    if not argv:
        return argv
    path = Path(argv[0])
    try:
        rel = path.resolve().relative_to(_REPO)
    except (ValueError, OSError):
        return argv
    if rel.parts[0].startswith(".venv"):  # a console script of the checkout's environment: `invlab ...`
        return [path.name, *argv[1:]]
    if rel.parts[0] == "benchmarks" and path.is_absolute():
        return ["python", "-m", ".".join(rel.with_suffix("").parts), *argv[1:]]
    return [rel.as_posix(), *argv[1:]]


def provenance(argv: list[str] | None = None, device: str | torch.device = "cpu") -> dict:
    """How a result was made: ``command`` (argv, shell-quoted), ``commit``, ``dirty``,
    ``invlab``, ``torch``, ``python``, ``threads``, ``device``, ``cpu_capability`` (the
    instruction set of torch's CPU kernels, e.g. AVX2 or AVX512: a CPU run's last digits
    depend on it), ``date`` (UTC, ISO 8601).

    The environment variable ``INVLAB_COMMIT``, when set, names the commit instead, with
    ``dirty`` unknown (None): for code copied to another machine, whose copy may lack its
    ``.git`` or carry a stale one."""
    from invlab import __version__

    argv = _portable(list(sys.argv if argv is None else argv))
    if os.environ.get("INVLAB_COMMIT"):  # a copy of the code: the commit it was copied from
        commit, dirty = os.environ["INVLAB_COMMIT"], None
    else:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {
        "command": " ".join(shlex.quote(str(a)) for a in argv),
        "commit": commit or "unknown", "dirty": dirty,
        "invlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "device": hardware(device, detail=True),
        # the vector instructions torch's CPU kernels use: float results may differ across them
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def provenance_line(out: dict, *more: str) -> str:
    """The last line of every results table: command, commit, hardware (when recorded),
    date, then ``more``."""
    parts = [f"Command: `{out['command']}`", f"commit {out['commit']}", out.get("hardware"), out["date"], *more]
    return " · ".join(p for p in parts if p) + "."


def results_header(argv: list[str] | None = None, device: str = "cpu") -> dict:
    """The provenance keys of a results file: ``command``, ``commit`` (with "+uncommitted"
    when the tree had changes), ``hardware`` (:func:`hardware`) and ``date`` at the top level,
    for the results tables, and the whole :func:`provenance` object under ``"provenance"``."""
    prov = provenance(argv, device)
    commit = prov["commit"] + ("+uncommitted" if prov["dirty"] else "")
    return {"command": prov["command"], "commit": commit, "hardware": hardware(device),
            "date": prov["date"][:10], "provenance": prov}
