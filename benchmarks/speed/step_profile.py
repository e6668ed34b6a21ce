"""Where an inversion training step's time and memory go, against a supervised step
(``python -m benchmarks.speed.step_cost --part profile``).

Everything goes through the public API a user calls: ``create_model``, Adam, and either
``F.cross_entropy(model(x), y).backward()`` (the supervised step, eager, the baseline) or
``SemiSupervisedLoss(0.7, 0.2, method=...)`` (the inversion step), on one batch of ``batch``
random images of which ``labelled`` are labelled. Variants, interleaved in one process (one
of each per round, each round starting one variant later), after warm-up rounds:

* ``supervised`` — zero_grad, cross-entropy forward and backward, Adam;
* ``forward`` — the network's forward alone, no graph;
* ``forward + VJP`` (per method) — logits and (df/dx)^T f(x) without a graph for the parameters;
* ``inversion`` (per method: ``autograd``, the former default: ``torch.autograd.grad`` with
  ``create_graph``; ``transposed``: the explicit transposed pass) — the whole step;
* ``inversion, by part`` (per method) — the same step timed in its parts: forward, VJP
  (the reconstruction, with its graph), loss (eq. 10's terms), backward, optimiser.

Two floors stand beside the measured step. The *measured floor* is what the inversion step
would cost if each added part cost what it costs alone: the supervised step, plus the input VJP
measured alone (``forward + VJP - forward``, the fastest method's), plus its differentiation at
twice that (a transposed layer's backward is two products, like a layer's). The *structural
floor* prices the VJP at one forward's work (what it is in multiply-adds): ``supervised + 3
forward``, the "about twice a supervised step" of a network whose backward is twice its forward.

Peak memory of a step is measured for real: the allocator's allocations and frees during one
step (``torch.profiler`` with ``profile_memory``, its kineto memory events), their running sum's
maximum; not the process's resident size, which torch's import dominates.
"""

from __future__ import annotations

import statistics
import time

METHODS = ("autograd", "transposed")
PARTS = ("forward", "vjp", "loss", "backward", "optimizer")


#: ``torchvision:NAME``: torchvision's classifier with ten classes and frozen batch norm (an affine map per
#: channel, as batch norm in eval mode, in training too), on 3×32×32 colour images
TORCHVISION = "torchvision:"


def _build(model_name: str):
    from invlab.models import create_model

    if not model_name.startswith(TORCHVISION):
        return create_model(model_name)
    import torchvision
    from torchvision.ops import FrozenBatchNorm2d

    model = torchvision.models.get_model(model_name.removeprefix(TORCHVISION), num_classes=10,
                                         norm_layer=FrozenBatchNorm2d)
    model.input_shape = (3, 32, 32)
    return model


def _setup(model_name: str, batch: int):
    import torch

    torch.manual_seed(0)
    model = _build(model_name)
    shape = tuple(model.input_shape)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *shape, generator=g)
    y = torch.arange(batch) % 10
    return model, x, y


def variants(model_name: str, batch: int, labelled: int) -> dict:
    """{name: zero-argument step}; ``"<method> parts"`` steps return their parts' seconds."""
    import torch
    import torch.nn.functional as F

    from invlab.inverse import forward_inverse
    from invlab.losses import SemiSupervisedLoss, eq10_total, prediction_terms, reconstruction_loss

    model, x, y = _setup(model_name, batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = {m: SemiSupervisedLoss(0.7, 0.2, method=m) for m in METHODS}
    steps = {}

    def supervised():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(x)

    steps["supervised"], steps["forward"] = supervised, forward
    for method in METHODS:
        def fwd_vjp(method=method):
            forward_inverse(model, x, create_graph=False, check=False, method=method)

        def step(method=method):
            opt.zero_grad(set_to_none=True)
            losses[method](model, x, y, labelled, check=False)["total"].backward()
            opt.step()

        def parts(method=method):
            t = [time.perf_counter()]
            opt.zero_grad(set_to_none=True)
            if method == "transposed":
                from invlab.transposed import transposed_pass

                tp = transposed_pass(model)
                logits, states = tp.forward(x)
                t.append(time.perf_counter())
                rec = tp.transpose(logits, states)
            else:
                xg = x.detach().requires_grad_(True)
                logits = model(xg)
                t.append(time.perf_counter())
                (rec,) = torch.autograd.grad(logits, xg, grad_outputs=logits, create_graph=True)
            t.append(time.perf_counter())
            ce, ent, imbalance, n_l, n_u = prediction_terms(logits, y, labelled)
            total = eq10_total(0.7, 0.2, ce, reconstruction_loss(rec, x), ent, imbalance, n_l / len(x),
                               n_u / len(x), 0.0)
            t.append(time.perf_counter())
            total.backward()
            t.append(time.perf_counter())
            opt.step()
            t.append(time.perf_counter())
            return [b - a for a, b in zip(t, t[1:])]

        steps[f"forward + VJP, {method}"] = fwd_vjp
        steps[f"inversion, {method}"] = step
        steps[f"inversion by part, {method}"] = parts
    return steps


def _spread(ts: list[float]) -> dict:
    q1, med, q3 = statistics.quantiles(ts, n=4) if len(ts) > 1 else (ts[0],) * 3
    return {"median_s": statistics.median(ts), "q1_s": q1, "q3_s": q3}


def time_variants(model_name: str, batch: int, labelled: int, warmup: int, repeat: int) -> dict:
    steps = variants(model_name, batch, labelled)
    names = list(steps)
    times = {n: [] for n in names}
    parts = {m: [] for m in METHODS}
    for r in range(warmup + repeat):
        shift = r % len(names)
        for n in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            got = steps[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
                if n.startswith("inversion by part"):
                    parts[n.rsplit(", ", 1)[1]].append(got)
    out = {n: _spread(ts) for n, ts in times.items()}
    for m in METHODS:  # the ratio round by round (a slow spell of the machine hits both steps of a round)
        out[f"inversion, {m}"]["paired_ratio"] = _spread([a / b for a, b in zip(times[f"inversion, {m}"],
                                                                                times["supervised"])])
        out[f"inversion by part, {m}"]["parts"] = {p: _spread([row[i] for row in parts[m]]) for i, p in
                                                   enumerate(PARTS)}
    return out


def peak_memory_mb(step, warmup: int = 2) -> float:
    """The largest amount of memory the allocator held during one call of ``step`` beyond what
    it held before (MB): its kineto memory events' running sum."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak / 2**20


def profile_model(model_name: str, batch: int, labelled: int, warmup: int, repeat: int, memory: bool = True) -> dict:
    import torch

    timing = time_variants(model_name, batch, labelled, warmup, repeat)
    sup = timing["supervised"]["median_s"]
    fwd = timing["forward"]["median_s"]
    vjp = min(timing[f"forward + VJP, {m}"]["median_s"] for m in METHODS) - fwd
    row = {"model": model_name, "threads": torch.get_num_threads(), "variants": timing,
           "floor_s": sup + 3 * vjp, "floor_ratio": (sup + 3 * vjp) / sup,
           "structural_floor_s": sup + 3 * fwd, "structural_floor_ratio": (sup + 3 * fwd) / sup,
           **{f"ratio_{m}": timing[f"inversion, {m}"]["median_s"] / sup for m in METHODS},
           **{f"paired_ratio_{m}": timing[f"inversion, {m}"]["paired_ratio"]["median_s"] for m in METHODS}}
    if memory:
        steps = variants(model_name, batch, labelled)
        row["peak_memory_mb"] = {n: peak_memory_mb(steps[n]) for n in ("supervised", *(f"inversion, {m}" for m in
                                                                                         METHODS))}
    return row


def markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    def ms(v):
        return f"{v['median_s'] * 1e3:.1f} [{v['q1_s'] * 1e3:.1f}–{v['q3_s'] * 1e3:.1f}]"

    lines = [f"# Where an inversion step's time goes\n\nBatch {out['batch']} ({out['labelled']} labelled), "
             f"{out['threads']} thread(s); median [interquartile range] in ms of {out['repeat']} interleaved rounds "
             f"after {out['warmup']} warm-up rounds. Supervised: `F.cross_entropy(model(x), y).backward()` + Adam; "
             "inversion: `SemiSupervisedLoss(0.7, 0.2, method=...)` + Adam. × sup.: the medians' ratio (in brackets, "
             "the median of the rounds' own ratios). Measured floor: supervised + 3 × (forward "
             "+ VJP − forward); structural floor: supervised + 3 × forward (the VJP at a forward's work).", ""]
    rows = []
    for r in out["rows"]:
        v = r["variants"]
        mem = r.get("peak_memory_mb", {})
        rows.append(
            [
                r["model"],
                ms(v["supervised"]),
                ms(v["forward"]),
                " / ".join(f"{v[f'forward + VJP, {m}']['median_s'] * 1e3:.1f}" for m in METHODS),
                ms(v["inversion, autograd"]),
                f"{r['ratio_autograd']:.2f} ({r['paired_ratio_autograd']:.2f})",
                ms(v["inversion, transposed"]),
                f"**{r['ratio_transposed']:.2f}** ({r['paired_ratio_transposed']:.2f})",
                f"{r['floor_ratio']:.2f} / {r['structural_floor_ratio']:.2f}",
                " / ".join(f"{mem[k]:.1f}" for k in ("supervised", "inversion, autograd", "inversion, transposed"))
                if mem
                else "not measured",
            ]
        )
    lines += [
        markdown_table(
            [
                "model",
                "supervised",
                "forward",
                "forward + VJP (autograd / transposed)",
                "inversion, autograd",
                "× sup.",
                "inversion, transposed",
                "× sup.",
                "floor × sup. (measured / structural)",
                "peak MB sup. / autograd / transposed",
            ],
            rows,
        ),
        "",
        "By part (ms, medians):",
        "",
    ]
    part_rows = []
    for r in out["rows"]:
        for m in METHODS:
            p = r["variants"][f"inversion by part, {m}"]["parts"]
            part_rows.append([r["model"], m, *(f"{p[k]['median_s'] * 1e3:.1f}" for k in PARTS),
                              f"{sum(p[k]['median_s'] for k in PARTS) * 1e3:.1f}"])
    lines += [markdown_table(["model", "method", *PARTS, "sum"], part_rows), "", provenance_line(out), ""]
    return "\n".join(lines)
