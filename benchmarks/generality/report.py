"""The report of :mod:`benchmarks.generality.run`: what the finished runs say, written from
whatever has finished (``python -m benchmarks.generality --stage report``).

``results/generality.json`` (one entry per finished run, the tuning, the per-draw tables and
their summary, R's gain per method and draw, the changes and label-count rounds, the runs
whose method term stayed dead, the published numbers beside invlab's and the progress of
the study), its Markdown twin and ``docs/figures/generality.json``; the ``failures`` stage
draws the test images the best arms get wrong.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.generality.run import (
    ALIVE,
    ARMS,
    BASELINES,
    PRUNER,
    TUNED,
    collect,
    more_seeds,
    plan,
    planned,
    planned_rounds,
    tuning_summary,
)


def dead_terms(rows: list[dict]) -> list[dict]:
    """The runs whose method term stayed below :data:`ALIVE` of their cross-entropy."""
    return [{k: r[k] for k in ("dataset", "labels", "method", "reconstruction", "seed", "term_ratio")}
            for r in rows if r["term_ratio"] is not None and r["term_ratio"] < ALIVE]


def minutes_per_run(rows: list[dict]) -> dict[str, float]:
    """{"<method> with|without R": median minutes of its finished runs}: CPU minutes of the runs
    that counted them, where the arm has any (one thread a run: what a run costs, not how long
    it waited for the cores, nor a pause), else wall minutes (runs from before ``cpu_s``, which
    shared the cores with tests and timings and include those pauses)."""
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for r in rows:
        arm = f"{r['method'].split('+')[0]} {'with' if r['reconstruction'] else 'without'} R"
        wall.setdefault(arm, []).append(r["minutes"])
        if r.get("cpu_minutes") is not None:
            cpu.setdefault(arm, []).append(r["cpu_minutes"])
    return {arm: round(statistics.median(cpu.get(arm) or wall[arm]), 1) for arm in sorted(wall)}


def progress(args, rows: list[dict], runs: dict, rounds: dict[str, dict]) -> dict:
    """What is left of the rounds made so far (``runs``), and about how long two workers need
    for it at the median minutes each method's finished runs (``rows``) took, with and without
    R (every run has the same number of steps; :func:`minutes_per_run`).
    Rounds not made yet (they wait for round one) are counted at the runs they will have:
    2 x 5 (100 labels), 2 x data sets x draws (500)."""
    from invlab.experiments.studies import RESULT

    left = [run_id for run_id, (_, folder) in runs.items() if not (folder / RESULT).exists()]
    made = {stage for stage, made_runs in rounds.items() if stage != "runs" and made_runs} if rows else set()
    unknown = (0 if "hundred" in made else 2 * len(args.seeds)) + (
        0 if "more" in made else 2 * len(args.datasets) * len(more_seeds(args)))
    per_run = minutes_per_run(rows)
    overall = statistics.median(per_run.values()) if per_run else None

    def minutes(run_id: str) -> float | None:
        _, _, method, with_r, _ = run_id.split("/")
        return per_run.get(f"{method.split('+')[0]} {'with' if with_r == 'R' else 'without'} R", overall)

    estimate = None if overall is None else round((sum(minutes(i) for i in left) + unknown * overall) / 60 / 2, 1)
    return {"planned": len(runs) + unknown, "finished": len(runs) - len(left), "remaining": len(left) + unknown,
            "minutes_per_run": per_run, "cpu_timed_runs": sum(r.get("cpu_minutes") is not None for r in rows),
            "hours_left_two_workers": estimate, "runs_per_round": {stage: len(made) for stage, made in rounds.items()},
            # the whole of the rounds made so far at the measured medians: what the study costs
            "rounds_hours_two_workers": None if overall is None else round(sum(minutes(i) for i in runs) / 60 / 2, 1)}


def tuning_hours(tuning: dict, per_run: dict[str, float], full_steps: int) -> float | None:
    """The tuning's cost in hours of two workers at the measured medians: each study's steps
    trained (completed and pruned trials), at its method's minutes per full run (the paper's
    method with R, every other without, as they were tuned)."""
    total = 0.0
    for key, t in tuning.items():
        method = key.split()[1]
        per = per_run.get(f"{method} {'with' if method == 'inversion' else 'without'} R")
        if per is None:
            return None
        total += t["steps_trained"] / full_steps * per
    return round(total / 60 / 2, 1)


def gains(rows: list[dict], dataset: str, labels: int) -> dict[tuple[str, int], tuple[float, float]]:
    """{(method, draw): (test accuracy without R, gain of R in points)} for every method and
    draw of ``dataset`` with ``labels`` labels that has finished both with and without R."""
    keyed = {(r["method"], r["reconstruction"], r["seed"]): r["test_accuracy"] for r in rows
             if (r["dataset"], r["labels"]) == (dataset, labels)}
    return {(m, s): (acc, keyed[(m, True, s)] - acc) for (m, with_r, s), acc in sorted(keyed.items())
            if not with_r and (m, True, s) in keyed}


def arms(rows: list[dict], seeds: list[int]) -> list[dict]:
    """Each arm per data set and label count: its test accuracy on every finished draw, their
    mean and (over two draws or more) standard deviation."""
    keyed = {(r["dataset"], r["labels"], r["method"], r["reconstruction"], r["seed"]): r["test_accuracy"] for r in rows}
    out = []
    for dataset, labels in sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]}):
        for method, with_r in ARMS:
            done = {s: keyed[k] for s in seeds if (k := (dataset, labels, method, with_r, s)) in keyed}
            if done:
                out.append({"dataset": dataset, "labels": labels, "method": method, "reconstruction": with_r,
                            "test_accuracy": done, "mean": round(statistics.fmean(done.values()), 2),
                            "std": round(statistics.stdev(done.values()), 2) if len(done) > 1 else None})
    return out


def tables(rows: list[dict], seeds: list[int]) -> str:
    """Arms x draws per data set and label count, and R's gain per method and draw."""
    from invlab.io import markdown_table

    out = []
    stats = {(a["dataset"], a["labels"], a["method"], a["reconstruction"]): a for a in arms(rows, seeds)}
    for dataset, labels in sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]}):
        # the draws this group has run (the 500-label round runs fewer)
        ran = [s for s in seeds if any((r["dataset"], r["labels"], r["seed"]) == (dataset, labels, s)
                                       and "+" not in r["method"] for r in rows)]
        draws = [f"draw {s}" for s in ran]
        accuracy, gain = [], []
        gains_of_r = gains(rows, dataset, labels)
        for method, with_r in ARMS:
            if (a := stats.get((dataset, labels, method, with_r))) is None:
                continue
            vals = [a["test_accuracy"].get(s) for s in ran]
            n = len(a["test_accuracy"])
            spread = f"{a['mean']:.2f} ± {a['std']:.2f} ({n} draws)" if n > 1 else f"{a['mean']:.2f} (one draw)"
            accuracy.append([method, "yes" if with_r else "no", *(None if v is None else f"{v:.2f}" for v in vals),
                             spread])
        for method in BASELINES:
            gains_ = [gains_of_r[(method, s)][1] if (method, s) in gains_of_r else None for s in ran]
            done = [g for g in gains_ if g is not None]
            if done:
                gain.append([method, *(None if g is None else f"{g:+.2f}" for g in gains_),
                             f"{statistics.fmean(done):+.2f} ({len(done)} draw{'s' if len(done) > 1 else ''})"])
        out += [f"### {dataset}, {labels} labels (test accuracy %, validation-selected)", "",
                markdown_table(["method", "R", *draws, "mean ± std"], accuracy), ""]
        if gain:
            out += ["Gain of R (points, with minus without, same draw):", "",
                    markdown_table(["method", *draws, "mean"], gain), ""]
    return "\n".join(out)


def summary(rows: list[dict], seeds: list[int], labels: int = 50) -> dict:
    """The issue's targets per data set, on the draws where every arm has finished (so that
    every mean is over the same draws): the best method without R, chosen by mean validation
    accuracy, what R adds to it, draw by draw; the paper's method (``inversion``, tuned) and
    invlab's best method (the arm with R of the best mean validation accuracy) against every
    baseline without R; each baseline's mean gain of R; on each draw, the highest test
    accuracy of any arm and the arm that validation would pick there."""
    out = {}
    for dataset in sorted({r["dataset"] for r in rows if r["labels"] == labels and "+" not in r["method"]}):
        keyed = {(r["method"], r["reconstruction"], r["seed"]): r for r in rows
                 if r["dataset"] == dataset and r["labels"] == labels}
        draws = [s for s in seeds if all((m, with_r, s) in keyed for m, with_r in ARMS)]
        if not draws:
            continue

        def raw(method, with_r, key="test_accuracy"):
            return statistics.fmean(keyed[(method, with_r, s)][key] for s in draws)

        def mean(method, with_r, key="test_accuracy"):
            return round(raw(method, with_r, key), 2)

        def diff(a, b):  # of the unrounded means: the gain tables' mean, to the last digit
            return round(raw(*a) - raw(*b), 2)

        def picks(arms) -> dict:  # each draw's arm of the highest validation accuracy among ``arms``
            return {s: dict(zip(("method", "reconstruction", "val_accuracy", "test_accuracy"), max(
                ((m, r, keyed[(m, r, s)]["val_accuracy"], keyed[(m, r, s)]["test_accuracy"]) for m, r in arms),
                key=lambda a: a[2]))) for s in draws}

        best = max(BASELINES, key=lambda m: raw(m, False, "val_accuracy"))
        with_r = [arm for arm in ARMS if arm[1]]
        best_r = max(with_r, key=lambda a: raw(*a, "val_accuracy"))
        out[dataset] = {
            "labels": labels, "draws": draws,
            "test_mean": {f"{m} {'with' if r else 'without'} R": mean(m, r) for m, r in ARMS},
            "best_without_R": best, "best_without_R_test": mean(best, False),
            "best_with_R_test": mean(best, True), "gain_of_R_on_best": diff((best, True), (best, False)),
            "gain_of_R_on_best_per_draw": {s: round(keyed[(best, True, s)]["test_accuracy"]
                                                    - keyed[(best, False, s)]["test_accuracy"], 2) for s in draws},
            "invlab_test": mean("inversion", True),
            "invlab_minus_baseline": {m: diff(("inversion", True), (m, False)) for m in BASELINES},
            "invlab_best": f"{best_r[0]} with R", "invlab_best_test": mean(*best_r),
            "invlab_best_minus_baseline": {m: diff(best_r, (m, False)) for m in BASELINES},
            "gain_of_R": {m: diff((m, True), (m, False)) for m in BASELINES},
            # is a draw bad for every method? (a description of the draws, not a model selection)
            "highest_per_draw": {s: dict(zip(("method", "reconstruction", "test_accuracy"), max(
                ((m, r, keyed[(m, r, s)]["test_accuracy"]) for m, r in ARMS), key=lambda a: a[2])))
                for s in draws},
            "best_by_validation_per_draw": picks(ARMS)}
        picked = out[dataset]["best_by_validation_per_draw"]
        out[dataset]["best_by_validation_test_mean"] = round(
            statistics.fmean(h["test_accuracy"] for h in picked.values()), 2)
        # the changed arms (CHANGES, R on top) join the choice where they ran on every draw
        changed = sorted({(m, r) for m, r, _ in keyed if "+" in m})
        changed = [a for a in changed if all((*a, s) in keyed for s in draws)]
        if changed:
            out[dataset]["best_by_validation_per_draw_with_changes"] = picks([*ARMS, *changed])
            out[dataset]["best_by_validation_with_changes_test_mean"] = round(statistics.fmean(
                h["test_accuracy"] for h in out[dataset]["best_by_validation_per_draw_with_changes"].values()), 2)
            # does a changed arm with R beat the best method without R? (the target's question, per draw)
            out[dataset]["changed_with_R_minus_best_without_R"] = {
                m: {
                    "per_draw": {
                        s: round(keyed[(m, True, s)]["test_accuracy"] - keyed[(best, False, s)]["test_accuracy"], 2)
                        for s in draws
                    },
                    "mean": round(
                        statistics.fmean(keyed[(m, True, s)]["test_accuracy"] for s in draws) - raw(best, False), 2
                    ),
                }
                for m, r in changed
                if r
            }
    return out


def label_effect(rows: list[dict], labels: int = 50) -> list[dict]:
    """Is R's gain a low-label effect? For every method, data set and label count other than
    ``labels`` (the 500-label round), on the draws finished there with and without R: the
    mean test accuracy without and with R, R's gain, and R's gain with ``labels`` labels on
    the same draws (:func:`gains` of both)."""
    out = []
    for dataset, n in sorted({(r["dataset"], r["labels"]) for r in rows if r["labels"] != labels}):
        more, few = gains(rows, dataset, n), gains(rows, dataset, labels)
        for method in sorted({m for m, _ in more if "+" not in m}):
            draws = sorted(s for m, s in more if m == method)
            without = statistics.fmean(more[(method, s)][0] for s in draws)
            gain = statistics.fmean(more[(method, s)][1] for s in draws)
            out.append({"dataset": dataset, "labels": n, "method": method, "draws": draws,
                        "without_R": round(without, 2), "with_R": round(without + gain, 2), "gain_of_R": round(gain, 2),
                        f"gain_of_R_with_{labels}_labels": (
                            round(statistics.fmean(few[(method, s)][1] for s in draws), 2)
                            if all((method, s) in few for s in draws) else None)})
    return out


def label_effect_text(effects: list[dict], labels: int = 50) -> str:
    lines = []
    for e in effects:
        other = e[f"gain_of_R_with_{labels}_labels"]
        lines.append(
            f"- **{e['dataset']}**, {e['method']}, {e['labels']} labels, draws "
            f"{', '.join(map(str, e['draws']))}: {e['without_R']:.2f} % without R, {e['with_R']:.2f} % with R "
            f"({e['gain_of_R']:+.2f} points"
            + ("" if other is None else f"; with {labels} labels on the same draws {other:+.2f}")
            + ")"
        )
    return "### Is R's gain a low-label effect?\n\n" + "\n".join(lines) + "\n" if lines else ""


def summary_text(summ: dict) -> str:
    lines = []
    for dataset, s in summ.items():
        n = len(s["draws"])
        worst = min(s["invlab_minus_baseline"], key=s["invlab_minus_baseline"].get)
        lines.append(
            f"- **{dataset}**, {s['labels']} labels, the {n} draw{'s' if n > 1 else ''} every arm has finished "
            f"({', '.join(map(str, s['draws']))}): the best method without R by validation is {s['best_without_R']} "
            f"({s['best_without_R_test']:.2f} % test); with R it gets {s['best_with_R_test']:.2f} % "
            f"({s['gain_of_R_on_best']:+.2f} points; per draw "
            f"{', '.join(f'{g:+.2f}' for g in s['gain_of_R_on_best_per_draw'].values())}). The paper's method "
            f"(inversion, tuned): {s['invlab_test']:.2f} %, {s['invlab_minus_baseline'][worst]:+.2f} points against "
            f"its closest baseline without R ({worst}). invlab's best arm with R by validation: {s['invlab_best']}, "
            f"{s['invlab_best_test']:.2f} %, {min(s['invlab_best_minus_baseline'].values()):+.2f} points against its "
            f"closest baseline without R. R's mean gain per method: "
            f"{', '.join(f'{m} {g:+.2f}' for m, g in s['gain_of_R'].items())} points. Each draw's best arm by "
            f"validation: "
            + ", ".join(
                f"draw {d} {h['method']} {'with' if h['reconstruction'] else 'without'} R ({h['test_accuracy']:.2f} % "
                f"test)"
                for d, h in s["best_by_validation_per_draw"].items()
            )
            + f" (mean {s['best_by_validation_test_mean']:.2f} %); the highest test accuracy of any "
            f"arm on each draw: "
            + ", ".join(f"draw {d} {h['test_accuracy']:.2f} %" for d, h in s["highest_per_draw"].items())
            + "."
            + (
                ""
                if "best_by_validation_per_draw_with_changes" not in s
                else " With the changed arms in the choice: "
                + ", ".join(
                    f"draw {d} {h['method']} {'with' if h['reconstruction'] else 'without'} R "
                    f"({h['test_accuracy']:.2f} % test)"
                    for d, h in s["best_by_validation_per_draw_with_changes"].items()
                )
                + f" (mean {s['best_by_validation_with_changes_test_mean']:.2f} %). Each changed arm with R against "
                f"{s['best_without_R']} without R: "
                + "; ".join(
                    f"{m} {g['mean']:+.2f} points (per draw {', '.join(f'{v:+.2f}' for v in g['per_draw'].values())})"
                    for m, g in s["changed_with_R_minus_best_without_R"].items()
                )
                + "."
            )
        )
    return "\n".join(lines) if lines else "No draw has finished for every arm yet."


def repeats(rows: list[dict], tuning: dict) -> list[dict]:
    """The same setting trained twice: every completed tuning trial whose run (its configuration's
    key) a round also ran — the best trial of each tuning study is its round-one run on draw 0 —
    with both test accuracies: how far one run moves when nothing but the moment it was trained
    changes (the same code, torch, thread count and data; possibly another machine of the same
    kind, whose float32 kernels may round differently)."""
    by_run = {r["run"]: r for r in rows if r.get("run")}
    out = []
    for key, t in tuning.items():
        for trial in t.get("trials", []):
            if (r := by_run.get(trial.get("run"))) is not None and trial["test_accuracy"] is not None:
                out.append({"dataset": r["dataset"], "method": r["method"], "reconstruction": r["reconstruction"],
                            "seed": r["seed"], "run": r["run"], "tuning_test_accuracy": trial["test_accuracy"],
                            "round_test_accuracy": r["test_accuracy"],
                            "difference": round(r["test_accuracy"] - trial["test_accuracy"], 2)})
    return out


def repeats_text(pairs: list[dict]) -> str:
    from invlab.io import markdown_table

    if not pairs:
        return ""
    apart = [abs(p["difference"]) for p in pairs if p["difference"]]
    return ("### The same setting trained twice (a tuning trial and its round's run)\n\n"
            + markdown_table(["data set", "method", "R", "draw", "tuning trial test %", "round's run test %",
                              "difference"],
                             [[p["dataset"], p["method"], "yes" if p["reconstruction"] else "no", p["seed"],
                               f"{p['tuning_test_accuracy']:.2f}", f"{p['round_test_accuracy']:.2f}",
                               f"{p['difference']:+.2f}"] for p in pairs])
            + f"\n\n{len(pairs) - len(apart)} of {len(pairs)} pairs agree to the digit"
            + (f"; the others differ by {min(apart):.2f} to {max(apart):.2f} points.\n" if apart else ".\n"))


def changes(rows: list[dict]) -> dict:
    """{method+change: per R, its runs' draws, validation and test accuracy, the mean change
    against round one's run of the same arm and draw (where there is one), R's gain within the
    change on the draws with both, and the changed arm with R against round one's arm without R}."""
    base = {(r["dataset"], r["method"], r["reconstruction"], r["seed"]): r for r in rows
            if r["labels"] == 50 and "+" not in r["method"]}
    out = {}
    for name in {r["method"] for r in rows if "+" in r["method"]}:
        method = name.split("+")[0]
        entry, selected = {}, {}
        for with_r in (False, True):
            sel = selected[with_r] = sorted((r for r in rows if r["method"] == name and r["reconstruction"] == with_r),
                                            key=lambda r: r["seed"])
            if not sel:
                continue
            paired = [(r, base[k]) for r in sel if (k := (r["dataset"], method, with_r, r["seed"])) in base]
            entry["with_R" if with_r else "without_R"] = {
                "dataset": sel[0]["dataset"], "draws": [r["seed"] for r in sel],
                "val_accuracy": [r["val_accuracy"] for r in sel], "test_accuracy": [r["test_accuracy"] for r in sel],
                "test_mean": round(statistics.fmean(r["test_accuracy"] for r in sel), 2),
                "test_std": round(statistics.stdev(r["test_accuracy"] for r in sel), 2) if len(sel) > 1 else None,
                **({f"mean_change_{k}": round(statistics.fmean(r[f"{k}_accuracy"] - b[f"{k}_accuracy"]
                                                               for r, b in paired), 2) for k in ("val", "test")}
                   if paired else {})}
        alone = [(r, base[k]) for r in selected[True] if (k := (r["dataset"], method, False, r["seed"])) in base]
        if alone:  # R's gain against round one's arm without R (the on-top round has no arm of its own without R)
            entry["gain_over_round_one_without_R"] = {
                "draws": [r["seed"] for r, _ in alone],
                "per_draw": [round(r["test_accuracy"] - b["test_accuracy"], 2) for r, b in alone],
                "mean": round(statistics.fmean(r["test_accuracy"] - b["test_accuracy"] for r, b in alone), 2)}
        if {"with_R", "without_R"} <= entry.keys():
            w, wo = entry["with_R"], entry["without_R"]
            both = [s for s in w["draws"] if s in wo["draws"]]
            if both:
                t = {s: a for s, a in zip(w["draws"], w["test_accuracy"])}
                u = {s: a for s, a in zip(wo["draws"], wo["test_accuracy"])}
                entry["gain_of_R"] = {"draws": both, "per_draw": [round(t[s] - u[s], 2) for s in both],
                                      "mean": round(statistics.fmean(t[s] - u[s] for s in both), 2)}
        out[name] = entry
    return dict(sorted(out.items()))


def changes_table(rows: list[dict]) -> str:
    """Each changed arm against round one's run of the same arm and draw: validation accuracy
    (what chooses) and test accuracy per draw, the mean change, R's gain within the change, and
    the changed arm with R against round one's arm without R."""
    from invlab.io import markdown_table

    def gain_row(name: str, g: dict) -> list:
        return [name, " / ".join(map(str, g["draws"])), " / ".join(f"{v:+.2f}" for v in g["per_draw"]),
                f"{g['mean']:+.2f}"]

    table, gain, over = [], [], []
    for name, entry in changes(rows).items():
        for key in ("without_R", "with_R"):
            if (c := entry.get(key)) is None:
                continue
            table.append([name, "yes" if key == "with_R" else "no", c["dataset"], " / ".join(map(str, c["draws"])),
                          " / ".join(f"{v:.2f}" for v in c["val_accuracy"]),
                          f"{c['mean_change_val']:+.2f}" if "mean_change_val" in c else None,
                          " / ".join(f"{v:.2f}" for v in c["test_accuracy"]),
                          f"{c['test_mean']:.2f}" + (f" ± {c['test_std']:.2f}" if c["test_std"] is not None else ""),
                          f"{c['mean_change_test']:+.2f}" if "mean_change_test" in c else None])
        if "gain_of_R" in entry:
            gain.append(gain_row(name, entry["gain_of_R"]))
        if "gain_over_round_one_without_R" in entry:
            over.append(gain_row(name, entry["gain_over_round_one_without_R"]))
    if not table:
        return ""
    text = ("### The changes round (50 labels), against round one's run of the same arm and draw\n\n"
            + markdown_table(["arm", "R", "data set", "draws", "validation %", "mean change (val)", "test %",
                              "test mean ± std", "mean change (test)"], table) + "\n")
    if gain:
        text += ("\nGain of R within the change (test points, same draw):\n\n"
                 + markdown_table(["arm", "draws", "per draw", "mean"], gain) + "\n")
    if over:
        text += ("\nThe changed arm with R against round one's arm without R (test points, same draw):\n\n"
                 + markdown_table(["arm", "draws", "per draw", "mean"], over) + "\n")
    return text


def figure(rows: list[dict], tuning: dict, path: Path) -> None:
    """Top: the tuning trials of every method on each data set (validation accuracy). Then a row
    per data set and label count (50 labels first): on the left every draw's test accuracy of
    each method without and with R; on the right R's gain on each draw against the same run's
    accuracy without R (does R help the methods and draws that are weak without it more?)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from invlab.io import save_figures

    groups = sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]}, key=lambda g: (g[1], g[0]))
    fig = make_subplots(rows=1 + len(groups), cols=2, vertical_spacing=0.35 / (1 + len(groups)),
                        horizontal_spacing=0.08, specs=[[{"colspan": 2}, None]] + [[{}, {}]] * len(groups),
                        subplot_titles=["tuning: validation accuracy of each completed trial",
                                        *(t for d, n in groups for t in (f"{d}, {n} labels: test accuracy per draw",
                                                                         f"{d}, {n} labels: gain of R"))])
    fig.add_trace(go.Box(x=[key for key, t in tuning.items() for _ in t["trials"]],
                         y=[trial["val_accuracy"] for t in tuning.values() for trial in t["trials"]],
                         boxpoints="all", name="tuning trials", marker_color="#1f77b4"), row=1, col=1)
    fig.update_yaxes(title_text="validation accuracy (%)", row=1, col=1)
    colours = dict(zip(BASELINES, ("#8c564b", "#000000", "#2ca02c", "#9467bd", "#ff7f0e")))  # not the boxes' grey, red
    order = list(dict.fromkeys(m for m, _ in ARMS))
    for row, (dataset, labels) in enumerate(groups, 2):
        for with_r, colour in ((False, "#888888"), (True, "#d62728")):
            sel = [r for r in rows if (r["dataset"], r["labels"], r["reconstruction"]) == (dataset, labels, with_r)
                   and "+" not in r["method"]]
            fig.add_trace(go.Box(x=[r["method"] for r in sel], y=[r["test_accuracy"] for r in sel], boxpoints="all",
                                 name="with R" if with_r else "without R", marker_color=colour,
                                 text=[f"draw {r['seed']}" for r in sel], showlegend=row == 2), row=row, col=1)
        gains_of_r = gains(rows, dataset, labels)
        for method in BASELINES:
            pairs = [(s, *gains_of_r[(m, s)]) for (m, s) in gains_of_r if m == method]
            if pairs:
                fig.add_trace(go.Scatter(x=[p[1] for p in pairs], y=[p[2] for p in pairs], mode="markers",
                                         name=f"gain of R: {method}", marker=dict(color=colours[method], size=9),
                                         text=[f"{method}, draw {p[0]}" for p in pairs], legendgroup=method,
                                         showlegend=row == 2), row=row, col=2)
        fig.update_xaxes(categoryorder="array", categoryarray=order, row=row, col=1)
        fig.update_yaxes(title_text="test accuracy (%)", row=row, col=1)
        fig.add_hline(y=0, line_dash="dot", line_color="#888888", row=row, col=2)
        fig.update_xaxes(title_text="test accuracy without R (%)", row=row, col=2)
        fig.update_yaxes(title_text="gain of R (points)", row=row, col=2)
    fig.update_layout(boxmode="group", title="Test accuracy per label draw: each method without and with R",
                      height=380 * (1 + len(groups)), width=1200)
    save_figures(fig, path)  # kept in git: the figure's data, a few kB


#: Beside a retrained checkpoint: the recorded and the retrained test accuracy (later failures
#: stages still say the checkpoint is a retrained model's).
RETRAINED = "retrained.json"


def checkpoint_again(config, folder: Path) -> dict | None:
    """Give a finished run restored from the record (``result.json`` alone: a fresh machine)
    its checkpoint back by training it again in a scratch folder beside it. Returns None
    where the run's own checkpoint was there, else the recorded and the retrained test accuracy
    (kept beside it in :data:`RETRAINED`, and returned again by a later call). They
    can differ (:func:`repeats` measures how often and how far the same setting lands apart
    when trained twice); the failures are then the retrained model's, which the report says."""
    import shutil

    from invlab.experiments.studies import RESULT, run_resumable
    from invlab.io import save_json
    from invlab.training.checkpoints import CHECKPOINT

    marker = folder / RETRAINED
    if (folder / CHECKPOINT).exists():
        return json.loads(marker.read_text()) if marker.exists() else None
    recorded = json.loads((folder / RESULT).read_text())["test_accuracy"]
    scratch = folder.with_name(folder.name + ".again")
    print(f"[failures] {folder.name}: no checkpoint on this machine; training it again ...", flush=True)
    again = run_resumable(config, scratch)["test_accuracy"]
    if abs(again - recorded) > 0.01:
        print(f"[failures] {folder.name}: trained again it gives {again:.2f} % test accuracy where the record has "
              f"{recorded:.2f} %; its failures are the retrained model's", flush=True)
    out = {"recorded_test_accuracy": recorded, "retrained_test_accuracy": again}
    save_json(out, marker)  # before the checkpoint: a checkpoint is never there without its note
    (scratch / CHECKPOINT).replace(folder / CHECKPOINT)
    shutil.rmtree(scratch)
    return out


def failures(args) -> None:
    """Where R fails: for every finished run of the paper's method (inversion, tuned, 5 labels
    per class), the confusion pairs of its selected model on the validation split, and for
    its most confused pair the draw's labelled images of both classes, the misclassified
    validation images beside their reconstructions (df/dx)^T f(x), and correctly classified
    images of the same class."""
    import torch

    from benchmarks.paper.confusion import confusion
    from invlab import reconstruct
    from invlab.experiments.studies import RESULT
    from invlab.io import markdown_table, save_figures, save_report
    from invlab.training.provenance import provenance_line, results_header
    from invlab.viz.plots import image_rows

    entries, rows = [], {}
    for run_id, (config, folder) in plan(args, 5, (("inversion", True),)).items():
        dataset, _, method, r, seed = run_id.split("/")
        if r != "R" or not (folder / RESULT).exists():
            continue
        retrained = checkpoint_again(config, folder)
        c = confusion(folder, keep_data=True)
        data, model, pred = c.pop("_data"), c.pop("_model"), c.pop("_pred")
        names = c["class_names"]
        t, p = c["most_confused"][0]["true"], c["most_confused"][0]["predicted"]
        wrong = ((data.y_val == t) & (pred == p)).nonzero().flatten()[:args.show]
        right = ((data.y_val == t) & (pred == t)).nonzero().flatten()[:args.show]
        # the draw's labelled images of both classes: is the confusion in the labels?
        rows[f"{dataset} draw {seed}: the labelled {names[t]} | {names[p]}"] = torch.cat(
            [data.x_labelled[data.y_labelled == k] for k in (t, p)])
        for kind, idx in ((f"{names[t]} taken for {names[p]}", wrong), (f"{names[t]} right", right)):
            if len(idx):
                x = data.x_val[idx]
                rows[f"{dataset} draw {seed}: {kind}"] = x
                rows[f"{dataset} draw {seed}: {kind}, reconstructed"] = reconstruct(model, x).detach()
        entries.append({"dataset": dataset, "method": method, "reconstruction": True, "seed": int(seed),
                        "test_accuracy": json.loads((folder / RESULT).read_text())["test_accuracy"], **c,
                        **({"retrained": retrained} if retrained else {})})
    out = {"split": "validation", "runs": entries, **results_header(device=args.device)}
    def lowest(e):
        k = min(range(len(e["recall"])), key=e["recall"].__getitem__)
        return f"{e['class_names'][k]} {e['recall'][k]:.1f} %"

    table = markdown_table(
        ["data set", "draw", "validation %", "lowest recall", "most confused (true → predicted: validation images)"],
        [[e["dataset"], e["seed"], f"{e['val_accuracy']:.2f}", lowest(e),
          ", ".join(f"{e['class_names'][m['true']]} → {e['class_names'][m['predicted']]}: {m['count']}"
                    for m in e["most_confused"][:3])] for e in entries])
    again = [f"{e['dataset']} draw {e['seed']} (test {e['retrained']['retrained_test_accuracy']:.2f} % retrained, "
             f"{e['retrained']['recorded_test_accuracy']:.2f} % recorded)" for e in entries if "retrained" in e]
    text = ("# Where R fails: the paper's method (inversion, tuned), 50 labels, on the validation split\n\n"
            f"{table}\n\n" + (f"Trained again on this machine for their checkpoints (restored from the record without "
                               f"one): {', '.join(again)}.\n\n" if again else "")
            + f"Figure: `{args.failures_figure}`.\n\n{provenance_line(out)}\n")
    save_report(out, args.failures_out, text)
    if rows:
        fig = image_rows(rows, title="the most confused pair of each run: the labelled images of both classes,<br>"
                                     "mistakes, their reconstructions, and correct images of the same class")
        save_figures(fig, args.failures_figure)
    print(text)


#: Published MNIST results with 50 and 100 labels, each with its protocol as its paper gives
#: it ("not stated" where it does not); accuracies are 100 minus the published test errors.
PUBLISHED = [
    {"method": "Improved GAN (feature matching)", "source": "Salimans et al. 2016, Table 1", "labels": 50,
     "accuracy": 97.79, "std": 1.36, "network": "MLP discriminator (permutation-invariant)",
     "budget": "not stated", "augmentation": "none", "selection": "not stated", "draws": 10},
    {"method": "Improved GAN (feature matching)", "source": "Salimans et al. 2016, Table 1", "labels": 100,
     "accuracy": 99.07, "std": 0.065, "network": "MLP discriminator (permutation-invariant)",
     "budget": "not stated", "augmentation": "none", "selection": "not stated", "draws": 10},
    {"method": "Ladder network", "source": "Rasmus et al. 2015, Table 1", "labels": 50, "accuracy": 98.38,
     "std": 0.65, "network": "MLP 784-1000-500-250-250-250-10 (permutation-invariant)",
     "budget": "150 epochs (100, then 50 with a decaying rate)", "augmentation": "none",
     "selection": "hyperparameters on 10 000 validation images, then trained on all 60 000", "draws": 10},
    {"method": "Ladder network", "source": "Rasmus et al. 2015, Table 1", "labels": 100, "accuracy": 98.94,
     "std": 0.37, "network": "MLP 784-1000-500-250-250-250-10 (permutation-invariant)",
     "budget": "150 epochs (100, then 50 with a decaying rate)", "augmentation": "none",
     "selection": "hyperparameters on 10 000 validation images, then trained on all 60 000", "draws": 10},
    {"method": "VAT", "source": "Miyato et al. 2016 (1507.00677), Table 2", "labels": 100, "accuracy": 97.88,
     "std": None, "network": "MLP (permutation-invariant)", "budget": "not stated here", "augmentation": "none",
     "selection": "eps chosen on a validation set", "draws": "not stated"},
    {"method": "Deep-network inversion (the paper)", "source": "Balestriero et al. 2018, Table 2", "labels": 50,
     "accuracy": 99.07, "std": None, "network": "smallcnn-mean", "budget": "not stated",
     "augmentation": "none", "selection": "not stated (no validation split described)", "draws": 1},
]


# An implementation of VAT written outside invlab (cross-entropy + VAT's LDS + entropy + the
# balance term, each weight 1, eps 2.0, xi 1e-6 with the gradient taken with respect to r = xi d,
# Adam 1e-3 with cosine decay, 2000 steps of 50 labelled + 100 unlabelled images, smallcnn-mean,
# center-maxabs, invlab's label draws, validation-selected): its MNIST test accuracy per draw, as
# the issue that asked for this study reports it. invlab's VAT, tuned on MNIST, should match its mean.
OUTSIDE_VAT = {0: 97.24, 1: 90.29, 2: 97.43, 4: 87.86}


def outside_vat(rows: list[dict]) -> dict:
    """invlab's VAT without R on MNIST (50 labels) beside the outside implementation, draw by
    draw, and both means once every one of its draws has finished."""
    ours = {r["seed"]: r["test_accuracy"] for r in rows if (r["dataset"], r["labels"], r["method"],
                                                            r["reconstruction"]) == ("mnist", 50, "vat", False)}
    draws = [d for d in OUTSIDE_VAT if d in ours]
    mean = statistics.fmean(ours[d] for d in draws) if len(draws) == len(OUTSIDE_VAT) else None
    outside = statistics.fmean(OUTSIDE_VAT.values())
    return {"draws": draws, "invlab": {d: ours[d] for d in draws}, "outside": OUTSIDE_VAT, "invlab_mean": mean,
            "outside_mean": outside, "met": None if mean is None else mean >= outside}


def outside_vat_text(o: dict) -> str:
    per = ", ".join(f"draw {d} {o['invlab'][d]:.2f} / {o['outside'][d]:.2f}" for d in o["draws"])
    head = (f"- **VAT against an implementation written outside invlab** (MNIST, 50 labels, without R; "
            f"invlab / outside, test %): {per or 'no draw finished yet'}")
    if o["invlab_mean"] is None:
        return head + f"; the means wait for draws {', '.join(str(d) for d in o['outside'] if d not in o['draws'])}.\n"
    return head + (f"; mean {o['invlab_mean']:.2f} against {o['outside_mean']:.2f}: "
                   f"{'met' if o['met'] else 'not met'}.\n")


def published_table(rows: list[dict], seeds: list[int]) -> str:
    """The published MNIST numbers beside invlab's arms on MNIST with 50 and 100 labels
    (every arm with 50 labels; the 100-label round's two): same label counts, invlab's
    protocol in one line."""
    from invlab.io import markdown_table

    table = [[p["method"], p["source"], p["labels"],
              f"{p['accuracy']:.2f}" + (f" ± {p['std']:g}" if p["std"] is not None else ""), p["network"],
              p["budget"], p["augmentation"], p["selection"], p["draws"]] for p in PUBLISHED]
    for a in arms(rows, seeds):
        if a["dataset"] != "mnist" or a["labels"] not in (50, 100):
            continue
        n = len(a["test_accuracy"])
        table.append([f"invlab: {a['method']} {'with' if a['reconstruction'] else 'without'} R",
                      "this study", a["labels"], f"{a['mean']:.2f}" + (f" ± {a['std']:.2f}" if a["std"] else ""),
                      "smallcnn-mean", "2000 steps of 50 labelled + 100 unlabelled", "none",
                      "setting tuned and step chosen on 10 000 validation images carved from training", n])
    return ("### invlab beside the published MNIST results\n\n"
            + markdown_table(["method", "source", "labels", "test accuracy %", "network", "budget", "augmentation",
                              "model selection", "label draws"], table) + "\n")


def report(args) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    rounds = planned_rounds(args)  # read once: making a round reads the studies' storage
    runs = planned(args, rounds)  # every round made so far, each once
    rows = collect(args, runs)
    tuning = {f"{d} {m}": tuning_summary(args, m, d) for d in args.datasets for m in TUNED}
    dead = dead_terms(rows)
    out = {"runs": rows, "summary": summary(rows, args.seeds), "arms": arms(rows, args.seeds),
           "changes": changes(rows), "label_effect": label_effect(rows), "dead_terms": dead,
           "published": PUBLISHED, "progress": progress(args, rows, runs, rounds), "tuning": tuning,
           "outside_vat": outside_vat(rows), "repeats": repeats(rows, tuning),
           "tuning_hours_two_workers": tuning_hours(tuning, minutes_per_run(rows), args.steps or 2000),
           "protocol": {
        "model": "smallcnn-mean", "tuned_on": "each data set's own validation split, label draw 0 (baselines "
                                              "without R; inversion with its own beta)",
        "trials_per_method": args.trials, "random_startup_trials": args.startup_trials,
        "pruner": f"{PRUNER}, first cut at {args.min_resource} steps, reduction factor 2",
        "beta_with_R": args.beta, "seeds": args.seeds, "more_labels_per_class": args.more_labels,
        "more_seeds": more_seeds(args), "hundred_labels_per_class": args.hundred_labels,
        "change_dataset": args.change_dataset, "change_seeds": args.change_seeds, "alive_threshold": ALIVE,
        "spaces": {m: f"benchmarks/spaces/generality-{m}.json" for m in TUNED}},
        **results_header(device=args.device)}

    def setting(b):
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in b["params"].items())

    table = markdown_table(["data set", "method", "trials (completed + pruned)", "steps trained / of full trials",
                            f"validation gained after step {args.min_resource} (completed, median)",
                            "best validation", "its test", "best setting"], [
        [t["dataset"] if "dataset" in t else key.split()[0], key.split()[1],
         f"{t['completed_trials']} + {t['pruned_trials']} of {args.trials}",
         f"{t.get('steps_trained', 0)} / {t.get('steps_of_full_trials', 0)}",
         f"{t['late_gain_median']:+.2f}" if t.get("late_gain_median") is not None else None,
         *((f"{b['val_accuracy']:.2f}", f"{b['test_accuracy']:.2f}", setting(b)) if (b := t.get("best"))
           else (None, None, ""))] for key, t in tuning.items()])
    left = out["progress"]
    flags = ("No run has finished yet." if not rows else "Every run's method term stayed alive (above "
             f"{ALIVE:g} of its cross-entropy at some evaluation)." if not dead else
             f"**Dead terms** (the method's own term below {ALIVE:g} of the cross-entropy at every evaluation): "
             + ", ".join(f"{d['dataset']} {d['method']} {'with' if d['reconstruction'] else 'without'} R draw "
                         f"{d['seed']} ({d['term_ratio']:.1e})" for d in dead) + ".")
    text = (
        f"# Where reconstruction helps\n\n`python -m benchmarks.generality --stage report`: {left['finished']} of "
        f"{left['planned']} runs finished"
        + (
            f"; the {left['remaining']} left take two workers about {left['hours_left_two_workers']} hours at "
            f"the median minutes per run measured so far "
            f"({', '.join(f'{k} {v}' for k, v in left['minutes_per_run'].items())}; for each arm CPU minutes "
            f"where its runs counted them ({left['cpu_timed_runs']} runs), else wall minutes).\n\n"
            if left["hours_left_two_workers"] is not None
            else " (the time left is estimated once one has).\n\n"
        )
        + (
            f"The whole study at those medians: the tuning about {out['tuning_hours_two_workers']} hours of two "
            f"workers, the rounds ({', '.join(f'{k} {v} runs' for k, v in left['runs_per_round'].items())}) about "
            f"{left['rounds_hours_two_workers']} hours.\n\n"
            if out["tuning_hours_two_workers"] is not None and left["rounds_hours_two_workers"] is not None
            else ""
        )
        + f"Tuning: each data set's own validation split, 50 labels, label draw 0; {args.trials} trials per method "
        f"and data set ({args.startup_trials} random, the rest TPE), pruned by {PRUNER}; scored on validation "
        f"accuracy (%).\n\n{table}\n\n{flags}\n\n## Targets\n\n"
        f"{summary_text(out['summary'])}\n{outside_vat_text(out['outside_vat'])}\n{tables(rows, args.seeds)}\n"
        f"{label_effect_text(out['label_effect'])}\n{changes_table(rows)}\n{repeats_text(out['repeats'])}\n"
        f"{published_table(rows, args.seeds)}\n"
        f"{provenance_line(out)}\n"
    )
    save_report(out, args.out, text)
    figure(rows, tuning, Path(args.figure))
    print(text)
