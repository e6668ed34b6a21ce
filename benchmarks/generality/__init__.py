"""Where reconstruction helps (``python -m benchmarks.generality``): the study in two modules,
:mod:`benchmarks.generality.run` (tune, run, save, restore: the trainings) and
:mod:`benchmarks.generality.report` (what the finished runs say), the report reading the runs and
never the other way round; :func:`main` dispatches the stages. See :mod:`benchmarks.generality.run`
for the stages and the commands."""

from __future__ import annotations

from benchmarks.generality import report as report_stage
from benchmarks.generality.run import *  # noqa: F403 (the study's names, as before the split)
from benchmarks.generality.run import main as run_main
from benchmarks.generality.run import parse_args, prepare


def main(argv=None) -> None:
    """``python -m benchmarks.generality --stage STAGE``: ``report`` and ``failures`` write the report, the
    other stages train (:func:`benchmarks.generality.run.main`)."""
    args = parse_args(argv)
    if args.stage in ("report", "failures"):
        prepare(args)
        (report_stage.report if args.stage == "report" else report_stage.failures)(args)
    else:
        run_main(args)
