"""Does VAT perturb? Its adversarial perturbation on real MNIST images, in float32, against
an outside reference: the exact Hessian-vector product in float64.

For an untrained and a briefly trained ``smallcnn-mean`` (100 Adam steps of cross-entropy on
the 50 labelled images of draw 0), on 64 training images scaled as the study scales them
(``center-maxabs``), for invlab's step (``vat_xi = 0``: relative to the input's scale) and
Miyato et al.'s absolute xi = 1e-6:

* |r_adv| per example (min, median, max) against eps;
* how many examples got no direction from the network (their finite difference was 0);
* the cosine between each example's direction and the float64 reference H d (one power
  iteration from the same d, H the Hessian of KL(p(x) || p(x + r)) at r = 0, by a double
  backward pass);
* the KL along r_adv against the KL along 32 random directions of the same norm;

and a short run of VAT alone (``invlab train --method vat --beta 0 --vat-eps 2 --steps 200
--eval-every 100``, the recipe's protocol, draw 0): its logged LDS term beside its
cross-entropy at each evaluation, and its test accuracy (validation-selected).

    python -m benchmarks.methods.vat_check      # results/vat_check.{json,md}
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
import torch.nn.functional as F


def exact_direction(model, x, d):
    """H d in float64 by a double backward pass (the reference)."""
    from invlab.methods import softmax_kl

    model, x, d = copy.deepcopy(model).double(), x.double(), d.double()
    r = torch.zeros_like(x, requires_grad=True)
    p = model(x).detach()
    (g,) = torch.autograd.grad(softmax_kl(p, model(x + r)), r, create_graph=True)
    (hd,) = torch.autograd.grad((g * d).sum(), r)
    return hd


def measure(model, x, eps: float, xi: float) -> dict:
    from invlab.methods import softmax_kl, unit_directions, vat_perturbation, vat_step

    with torch.no_grad():
        logits = model(x)
    # vat_perturbation's own d
    start = unit_directions(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    r = vat_perturbation(model, x, logits, eps, xi, torch.Generator().manual_seed(0))
    xi_used = vat_step(x, xi)
    probe = (xi_used * start).requires_grad_(True)
    (g,) = torch.autograd.grad(softmax_kl(logits, model(x + probe)), probe)
    dead = int((g.flatten(1).abs().amax(1) == 0).sum())
    cos = F.cosine_similarity(r.flatten(1).double(), exact_direction(model, x, start).flatten(1), dim=1)
    norms = r.flatten(1).norm(dim=1)
    with torch.no_grad():
        adv = softmax_kl(logits, model(x + r)).item()
        gen = torch.Generator().manual_seed(1)
        rand = [softmax_kl(logits, model(x + eps * unit_directions(torch.randn(x.shape, generator=gen)))).item()
                for _ in range(32)]
    return {"xi": xi_used, "norm_min": norms.min().item(), "norm_median": norms.median().item(),
            "norm_max": norms.max().item(), "no_direction": dead,
            "cos_to_exact_median": cos.median().item(), "cos_to_exact_min": cos.min().item(),
            "kl_adversarial": adv, "kl_random_max": max(rand), "kl_random_median": statistics.median(rand),
            "kl_ratio_to_random_median": adv / statistics.median(rand)}


def old_perturbation_norms(model, x, eps: float, xi: float = 1e-6) -> dict:
    """The perturbation as invlab computed it before the fix: gradient with respect to d,
    normalised by its plain L2 norm clamped at 1e-12."""
    from invlab.methods import softmax_kl

    with torch.no_grad():
        logits = model(x)
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    d.requires_grad_(True)
    (g,) = torch.autograd.grad(softmax_kl(logits, model(x + xi * d)), d)
    r = eps * g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    n = r.flatten(1).norm(dim=1)
    return {"norm_min": n.min().item(), "norm_median": n.median().item(), "norm_max": n.max().item()}


def main(argv=None) -> None:
    from invlab.data import load_dataset
    from invlab.data.preprocess import preprocess_data
    from invlab.io import markdown_table, save_report
    from invlab.models import create_model
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eps", type=float, default=2.0)
    p.add_argument("--out", default="results/vat_check.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = preprocess_data(load_dataset("mnist", 5, 0), "center-maxabs")
    x = data.x_train[:64]
    model = create_model("smallcnn-mean", num_classes=10, input_shape=tuple(x.shape[1:]))
    rows, out = [], {"eps": args.eps, "images": "MNIST training images 0-63, center-maxabs", "nets": {}}
    for net in ("untrained", "trained 100 steps"):
        if net != "untrained":
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            xl, yl = data.x_train[data.labelled], data.y_train[data.labelled]
            for _ in range(100):
                loss = F.cross_entropy(model(xl), yl)
                opt.zero_grad()
                loss.backward()
                opt.step()
        entry = {"before the fix (xi 1e-6)": old_perturbation_norms(model, x, args.eps),
                 "relative xi (invlab)": measure(model, x, args.eps, 0.0),
                 "absolute xi 1e-6 (Miyato)": measure(model, x, args.eps, 1e-6)}
        out["nets"][net] = entry
        for name, m in entry.items():
            rows.append(
                [
                    net,
                    name,
                    f"{m.get('xi', 1e-6):.2g}",
                    f"{m['norm_min']:.3g} / {m['norm_median']:.3g} / {m['norm_max']:.3g}",
                    m.get("no_direction", "…"),
                    f"{m['cos_to_exact_median']:.3f} ({m['cos_to_exact_min']:.3f})"
                    if "cos_to_exact_min" in m
                    else None,
                    f"{m['kl_adversarial']:.3g} vs {m['kl_random_median']:.3g} ({m['kl_ratio_to_random_median']:.1f}x),"
                    f" max random {m['kl_random_max']:.3g}"
                    if "kl_adversarial" in m
                    else None,
                ]
            )
    from invlab.train import RECOMMENDED, TrainConfig, train

    run = train(TrainConfig(**{**RECOMMENDED, "steps": 200}, method="vat", beta=0.0, vat_eps=args.eps, eval_every=100,
                            seed=0, device="cpu"), progress=False)
    out["short_run"] = {"command": "invlab train --method vat --beta 0 --vat-eps 2 --steps 200 --eval-every 100",
                        "evaluations": [{"step": h["step"], "lds": h["m:lds"], "ce": h["ce"],
                                         "val_accuracy": h["val_accuracy"]} for h in run.history],
                        "test_accuracy": run.test_accuracy, "best_step": run.best_step}
    out.update(results_header(device="cpu"))
    table = markdown_table(["network", "perturbation", "xi", "|r_adv| min / median / max", "no direction (of 64)",
                            "cos to exact H d: median (min)", "KL along r_adv vs random directions (median)"], rows)
    short = out["short_run"]
    text = (f"# VAT's perturbation on MNIST, eps {args.eps}\n\n{table}\n\n"
            f"Short run (`{short['command']}`): LDS " + ", ".join(
                f"{e['lds']:.3g} (cross-entropy {e['ce']:.3g}) at step {e['step']}" for e in short["evaluations"])
            + f"; test accuracy {short['test_accuracy']:.2f} % (validation-selected, step {short['best_step']}).\n\n"
            f"{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
