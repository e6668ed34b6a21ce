"""The site's Explore page in headless Chromium: how long a stroke takes to redraw every figure,
how long onnxruntime-web's run alone takes, and what the explorer adds to the built site.

For each lesson network, ``--warmup`` strokes are dropped, then ``--strokes`` short strokes are
drawn with the mouse on the canvas; for each, the page records the time from the stroke's end
(``pointerup``) to every figure redrawn (``state.timing.total_ms``: the run, the page's
arithmetic, plotly's four updates) and the onnxruntime run of that update alone (``run_ms``).
Median and interquartile range per network. The page is opened from the file system
(``file://``), every request off the machine refused.

    bin/docs   # or: INVLAB_DOCS_EXECUTE=off bin/docs (the page does not need the lessons run)
    python -m benchmarks.speed.explorer_speed --site docs/_build/html

``--part regions``: the regions view instead. For each lesson network, the segment from the page's first
input to test image ``--target`` ``--repeat`` times (the page's own ``walkRegions``: swept on a ReLU network,
walked otherwise; pieces, runs of the graphs, milliseconds) and, where the page sweeps, the walk on the same
end points, interleaved; one run of each graph on its full batch of points timed alone; and the plane through
them and test image ``--third`` at 64 × 64 points:

    python -m benchmarks.speed.explorer_speed --part regions --site docs/_build/html   # results/explorer_regions.*

The page is driven by the site's browser driver (``docs/site/site_browser.py``), as the browser tests
drive it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "site"))

from site_browser import (  # noqa: E402 (the site's browser driver, docs/site/site_browser.py)
    ASSETS,
    PAGE,
    chromium,
    explorer_page,
    mouse_stroke,
    networks,
    select_network,
    wait_idle,
)


def stroke_points(rng: np.random.Generator, n: int = 8) -> list[tuple[float, float]]:
    """A short random stroke inside the canvas's middle."""
    start = rng.uniform(0.25, 0.75, 2)
    steps = rng.normal(0, 0.04, (n, 2)).cumsum(0)
    return [tuple(np.clip(start + s, 0.05, 0.95)) for s in steps]


def _spread(values: list[float]) -> dict:
    q = np.percentile(values, [25, 50, 75])
    return {"median": float(q[1]), "q1": float(q[0]), "q3": float(q[2]), "n": len(values)}


def zoo_files(names: list[str], folder: Path) -> dict[str, Path]:
    """torchvision's classifiers at 3×32×32 (random weights, non-trivial batch norm statistics), exported."""
    import torch
    import torchvision

    from benchmarks.paper.zoo import randomise_batchnorm
    from invlab.export import to_onnx

    files = {}
    for name in names:
        torch.manual_seed(0)
        model = randomise_batchnorm(torchvision.models.get_model(name, num_classes=10)).eval()
        files[f"{name} (3×32×32)"] = to_onnx(model, folder / f"{name}.onnx", input_shape=(3, 32, 32))
    return files


def measure(site: Path, strokes: int, warmup: int, seed: int = 0, files: dict | None = None) -> dict:
    url = (site / PAGE).resolve().as_uri()
    rng = np.random.default_rng(seed)
    out = {}
    with explorer_page(url) as (page, log):
        chosen = [(net["id"], None) for net in networks(page)] + list((files or {}).items())
        for ident, path in chosen:
            if path is None:
                select_network(page, ident)
            else:  # a file of your own, as a reader drops it
                page.set_input_files("#invlab-file", str(path))
                page.wait_for_function(f"() => window.invlabExplorer.state.network.model === {path.name!r}",
                                       timeout=120_000)
                wait_idle(page)
            totals, runs = [], []
            for k in range(warmup + strokes):
                if k % 10 == 0:
                    page.click("#invlab-clear")
                    wait_idle(page)
                before = page.evaluate("() => window.invlabExplorer.state.updates")
                mouse_stroke(page, stroke_points(rng))
                wait_idle(page, before)
                timing = page.evaluate("() => window.invlabExplorer.state.timing")
                if k >= warmup:
                    totals.append(timing["total_ms"])
                    runs.append(timing["run_ms"])
            out[ident] = {"stroke_to_figures_ms": _spread(totals), "onnxruntime_run_ms": _spread(runs)}
        problems = log["console"] + log["errors"] + log["remote"]
        if problems:
            raise RuntimeError(f"the page reported problems: {problems}")
    return out


_ONE_RUN = """async (which) => {
    const net = window.invlabExplorer.state.net, B = net.regions.batch, n = net.shape.reduce((a, b) => a * b, 1);
    const graph = which === "sweep" ? net.regions.points : net.regions;
    if (!graph) return null;
    const x0 = new Float32Array(n), x1 = new Float32Array(n).fill(0.5);
    const feeds = { x0: new ort.Tensor("float32", x0, net.shape), x1: new ort.Tensor("float32", x1, net.shape),
                    t: new ort.Tensor("float32", new Float32Array(B).fill(0.3), [B]) };
    if (which === "walk") {
        feeds.x2 = new ort.Tensor("float32", x0, net.shape);
        feeds.u = new ort.Tensor("float32", new Float32Array(B), [B]);
    }
    await graph.session.run(feeds);
    const times = [];
    for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await graph.session.run(feeds);
        times.push(performance.now() - t0);
    }
    return {batch: B, ms: times};
}"""

#: the page's own segment (walkRegions: the sweep where the file carries its graphs), then the walk on the same
#: end points (InvlabRegions.walkPieces), interleaved
_BOTH_WAYS = """async (target) => {
    const r = await window.invlabExplorer.walkRegions(target), net = window.invlabExplorer.state.net;
    const out = {page: {ms: r.ms, runs: r.runs, pieces: r.pieces.length, method: r.method}};
    if (r.method === "sweep") {
        const w = await window.InvlabRegions.walkPieces(net, r.x0, r.x1);
        out.walk = {ms: w.ms, runs: w.runs, pieces: w.pieces.length, method: w.method};
    }
    return out;
}"""


def measure_regions(site: Path, target: int, third: int, repeat: int) -> dict:
    """The regions view on every lesson network: the page's segment ``repeat`` times (and, where the page sweeps
    it, the walk on the same end points, interleaved), one run of each graph alone, the 64 x 64 plane."""
    out = {}
    with explorer_page((site / PAGE).resolve().as_uri()) as (page, log):
        page.wait_for_function("() => !document.getElementById('invlab-regions').hidden", timeout=60_000)
        for net in networks(page):
            select_network(page, net["id"])
            both = [page.evaluate(_BOTH_WAYS, target) for _ in range(repeat)]
            walks = [b["page"] for b in both]
            runs = {way: page.evaluate(_ONE_RUN, way) for way in ("walk", "sweep")}
            plane = page.evaluate(f"""async () => {{
                const r = await window.invlabExplorer.mapPlane({target}, {third}, 64);
                return {{ms: r.ms, runs: r.runs, count: r.count}}; }}""")
            out[net["id"]] = {"method": walks[0]["method"], "segment_ms": _spread([w["ms"] for w in walks]),
                              "pieces": walks[0]["pieces"], "runs": [w["runs"] for w in walks],
                              "batch": runs["walk"]["batch"],
                              "one_run_ms": {way: _spread(r["ms"]) for way, r in runs.items() if r},
                              "plane_64_ms": plane["ms"], "plane_64_regions": plane["count"]}
            if "walk" in both[0]:
                out[net["id"]]["walk_same_segment"] = {
                    "segment_ms": _spread([b["walk"]["ms"] for b in both]), "pieces": both[0]["walk"]["pieces"],
                    "runs": [b["walk"]["runs"] for b in both]}
        problems = log["console"] + log["errors"] + log["remote"]
        if problems:
            raise RuntimeError(f"the page reported problems: {problems}")
    return out


def regions_main(args) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    speeds = measure_regions(Path(args.site), args.target, args.third, args.repeat)
    out = {"target": args.target, "third": args.third, "repeat": args.repeat, "networks": speeds,
           "browser": "headless Chromium (Debian), onnxruntime-web wasm, one thread", **results_header(device="cpu")}

    def seconds(spread):
        return f"{spread['median'] / 1000:.2f} ({spread['q1'] / 1000:.2f}–{spread['q3'] / 1000:.2f})"

    rows, batch = [], next(iter(speeds.values()))["batch"]
    for ident, m in speeds.items():
        walk = m.get("walk_same_segment")
        sweep_run = m["one_run_ms"].get("sweep")
        rows.append([ident, m["method"], f"{m['pieces']:,}", seconds(m["segment_ms"]),
                     ", ".join(str(r) for r in sorted(set(m["runs"]))),
                     f"{seconds(walk['segment_ms'])}, {walk['pieces']:,} pieces" if walk else "—",
                     f"{m['one_run_ms']['walk']['median']:.0f}",
                     f"{sweep_run['median']:.0f}" if sweep_run else "—", f"{m['plane_64_ms'] / 1000:.2f}"])
    table = markdown_table(["network", "the page's way", "pieces", "segment, median s (IQR)", "runs",
                            "walked instead, median s (IQR)", f"one run of the walk's graph, ms ({batch} points)",
                            f"one run of the sweep's graph, ms ({batch} points)", "64 × 64 plane, s"], rows)
    text = ("# The regions view's speed in headless Chromium\n\n"
            f"The page's regions view on each lesson network: the segment from the page's first input to its test "
            f"image {args.target}, {args.repeat} times in float32 by onnxruntime-web (one thread: a page opened "
            "from the file system is not cross-origin isolated, so the wasm backend runs single-threaded). A ReLU "
            "network's file carries the sweep's graphs and the page sweeps the segment level by level (one forward "
            "per break: `invlab.export.SegmentPoints`, the last level's logits from the cut by `SegmentTail`); on "
            "those networks the same segment is also walked piece by piece (`InvlabRegions.walkPieces`, each point "
            "of a run finds one whole piece with a forward and a pass along the direction), interleaved with the "
            "sweep. Max pooling and inhibitors are walked. One run of each graph on its full batch of points, "
            f"timed alone (median of 10); the plane through the two and test image {args.third} at 64 × 64 points "
            f"(the walk's graph).\n\n{table}\n\n{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


def site_bytes(site: Path) -> dict:
    """What the explorer adds to the built site: its assets and its page."""
    assets = {str(p.relative_to(site / ASSETS)): p.stat().st_size for p in sorted((site / ASSETS).rglob("*"))
              if p.is_file()}
    return {"assets": assets, "page": (site / PAGE).stat().st_size,
            "total": sum(assets.values()) + (site / PAGE).stat().st_size}


def main(argv=None) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", default="docs/_build/html", help="the built site (bin/docs)")
    p.add_argument("--strokes", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--zoo", nargs="*", default=["resnet18", "mobilenet_v2"], metavar="NAME",
                   help="torchvision classifiers exported at 3×32×32 and dropped on the page as your own files")
    p.add_argument("--part", choices=("strokes", "regions"), default="strokes")
    p.add_argument("--target", type=int, default=7, help="regions: the page's test image the segment goes to")
    p.add_argument("--third", type=int, default=3, help="regions: the plane's third test image")
    p.add_argument("--repeat", type=int, default=3, help="regions: walks of the segment per network")
    p.add_argument("--out", default=None, help="default results/explorer_speed.json, or explorer_regions.json")
    args = p.parse_args(argv)
    args.out = args.out or f"results/{'explorer_speed' if args.part == 'strokes' else 'explorer_regions'}.json"
    site = Path(args.site)
    if not (site / PAGE).exists():
        raise SystemExit(f"{site / PAGE} does not exist: build the site first (bin/docs)")
    if chromium() is None:
        raise SystemExit("Chromium is missing: apt-get install chromium")
    if args.part == "regions":
        return regions_main(args)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        speeds = measure(site, args.strokes, args.warmup, files=zoo_files(args.zoo, Path(tmp)))
    sizes = site_bytes(site)
    out = {"strokes": args.strokes, "warmup": args.warmup, "networks": speeds, "bytes": sizes,
           "browser": "headless Chromium (Debian), onnxruntime-web wasm, one thread", **results_header(device="cpu")}
    rows = [[ident, f"{m['stroke_to_figures_ms']['median']:.1f}",
             f"{m['stroke_to_figures_ms']['q1']:.1f}–{m['stroke_to_figures_ms']['q3']:.1f}",
             f"{m['onnxruntime_run_ms']['median']:.1f}",
             f"{m['onnxruntime_run_ms']['q1']:.1f}–{m['onnxruntime_run_ms']['q3']:.1f}"] for ident, m in speeds.items()]
    table = markdown_table(["network", "stroke → figures, median ms", "IQR", "onnxruntime run, median ms", "IQR"], rows)
    biggest = sorted(sizes["assets"].items(), key=lambda kv: -kv[1])[:3]
    text = (f"# The Explore page's speed in headless Chromium\n\n{args.strokes} strokes per network after "
            f"{args.warmup} dropped, drawn with the mouse; the page opened from the file system. The lesson "
            f"networks from the page's selector; torchvision's classifiers ({', '.join(args.zoo) or 'none'}) "
            "exported at 3×32×32 with random weights and dropped on the page as files of your own (colour, ten "
            f"templates).\n\n{table}\n\n"
            f"The explorer adds {sizes['total'] / 1e6:.2f} MB to the built site (largest: "
            + ", ".join(f"`{k}` {v / 1e6:.2f} MB" for k, v in biggest) + ").\n\n"
            f"{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
