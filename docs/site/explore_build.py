"""The documentation site's Explore page: notebook 00's explorer, computed in the reader's
browser by onnxruntime-web, with nothing to install.

:func:`build_assets` writes what the page loads, as plain (classic) scripts, so that the page
works opened from the file system (``file://``, where Chromium refuses ES modules and
``fetch``) as well as from any static host, with no request leaving the machine:

* ``ort.wasm.min.js`` — onnxruntime-web's wasm build (the npm package, at the version in
  ``explore/onnxruntime-web.version``, which ``bin/setup`` installs),
  and ``ort-binary.js``, its WebAssembly binary (gzip, base64) and its small ``.mjs`` loader,
  which the page hands to onnxruntime as ``env.wasm.wasmBinary`` and a blob URL;
* ``networks/*.js`` — the four lesson networks as ``invlab export`` writes them (base64);
* ``catalogue.js`` — the ONNX contract of :mod:`invlab.export` (the input's name, the outputs, the
  largest file: the page reads them from here), the networks (data set, test accuracy, class names), a sample of real
  test images of each data set with their labels, and the explorer's figures as notebook 00
  lays them out (titles, axes, colour scales read from
  :func:`invlab.viz.explorer.explorer_figures`'s plotly figures: one layout for both). The
  page draws them on canvases: plotly.js takes 10-25 ms to redraw each figure on a 2-core
  machine, four times the whole update's budget;
* the page's own scripts and style (``docs/site/explore/``).

``python docs/site/explore_build.py OUT`` writes them into OUT; ``bin/docs`` does it for the site
(``conf.py``). This is the site's build, beside the library: it reads the checkout (the page's
scripts beside this file) and the environment (onnxruntime-web under ``sys.prefix``), which
:mod:`invlab` itself never does.
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import sys
from pathlib import Path

import torch

from invlab.io import atomic_write

#: the page's scripts and style, and the onnxruntime-web version bin/setup installs (npm, pinned)
SOURCES = Path(__file__).resolve().parent / "explore"
ORT_VERSION = (SOURCES / "onnxruntime-web.version").read_text().strip()
ORT_DIST = Path(sys.prefix) / "share" / "npm" / "node_modules" / "onnxruntime-web" / "dist"
#: real test images shipped with the page: this many of each class, the first of the test set
SAMPLES_PER_CLASS = 10


def _js_assign(name: str, value) -> str:
    return f"window.{name} = {json.dumps(value, separators=(',', ':'))};\n"


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def ort_files() -> dict[str, Path]:
    """onnxruntime-web's wasm build: the script, its WebAssembly binary and the binary's loader."""
    files = {"script": ORT_DIST / "ort.wasm.min.js", "wasm": ORT_DIST / "ort-wasm-simd-threaded.wasm",
             "mjs": ORT_DIST / "ort-wasm-simd-threaded.mjs"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"onnxruntime-web is missing ({', '.join(missing)}): run bin/setup, which installs it "
                           f"(npm install --prefix {Path(sys.prefix) / 'share' / 'npm'} onnxruntime-web@{ORT_VERSION})")
    return files


def sample_images(dataset: str, per_class: int = SAMPLES_PER_CLASS, root=None) -> dict:
    """The first ``per_class`` test images of each class of ``dataset``: 8-bit pixels (base64,
    N x H x W, row-major), their labels and the class names."""
    from invlab.data import load_dataset

    data = load_dataset(dataset, labels_per_class=1, seed=0, root=root)
    x, y = data.x_test, data.y_test
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"the explorer's picker shows single-channel images; {dataset} has {tuple(x.shape[1:])}")
    picked = torch.cat([(y == c).nonzero()[:per_class, 0] for c in range(data.num_classes)])
    picked = picked.sort().values
    pixels = (x[picked, 0] * 255).round().clamp(0, 255).to(torch.uint8)  # (N, H, W)
    return {"pixels": base64.b64encode(pixels.numpy().tobytes()).decode(), "shape": list(pixels.shape),
            "labels": y[picked].tolist(), "class_names": list(data.class_names)}


def _text(value) -> str:
    return (value or {}).get("text", "") if isinstance(value, dict) else (value or "")


def figure_spec(fig: dict) -> dict:
    """What the page draws of a plotly figure (JSON) of the explorer: its titles, axis titles,
    size, margins, colours and colour scales — read from the figure, never retyped."""
    layout = fig["layout"]
    colorway = layout.get("template", {}).get("layout", {}).get("colorway", ["#636efa"])
    spec = {"title": _text(layout.get("title")), "height": layout["height"], "margin": layout.get("margin", {})}
    if fig["data"][0]["type"] == "bar":
        return {**spec, "kind": "bars", "color": fig["data"][0].get("marker", {}).get("color", colorway[0]),
                "xtitle": _text(layout["xaxis"].get("title")), "ytitle": _text(layout["yaxis"].get("title")),
                "tickangle": layout["xaxis"].get("tickangle", 0)}
    titles = [a["text"] for a in layout.get("annotations", [])]  # make_subplots's row titles
    rows = [{"title": titles[i] if i < len(titles) else "", "colorscale": t["colorscale"],
             "signed": t.get("zmid") == 0, "showscale": bool(t.get("showscale"))} for i, t in enumerate(fig["data"])]
    captions = any(layout[k].get("ticktext") for k in layout if k.startswith("xaxis"))
    return {**spec, "kind": "images", "rows": rows, "captions": captions}


def page_figures(class_names: list[str], input_shape=(1, 28, 28)) -> dict:
    """The explorer's figures for ``class_names`` as the page draws them (:func:`figure_spec`),
    from the notebook's own figures (:func:`invlab.viz.explorer.explorer_figures`)."""
    import plotly.io as pio

    from invlab.viz.explain import Explanation
    from invlab.viz.explorer import explorer_figures

    c = len(class_names)
    zero = torch.zeros(c, *input_shape)
    ex = Explanation(x=torch.zeros(input_shape), logits=torch.zeros(c), probs=torch.full((c,), 1 / c),
                     reconstruction=torch.zeros(input_shape), templates=zero, contributions=zero,
                     shares=torch.zeros(c))
    return {k: figure_spec(json.loads(pio.to_json(f))) for k, f in explorer_figures(ex, list(class_names)).items()}


def build_assets(out: str | Path, data_root=None) -> dict[str, int]:
    """Write the Explore page's files into ``out`` (see the module docstring); returns their sizes in bytes."""
    from invlab.export import INPUT, MAX_BYTES, OUTPUTS, TOP_K_OUTPUT, export_loaded
    from invlab.lessons import LESSONS, lesson_model, manifest

    out = Path(out)
    (out / "networks").mkdir(parents=True, exist_ok=True)
    files = ort_files()
    shutil.copy(files["script"], out / "ort.wasm.min.js")
    binary = {"wasm_gz": base64.b64encode(gzip.compress(files["wasm"].read_bytes(), 9, mtime=0)).decode(),
              "mjs": base64.b64encode(files["mjs"].read_bytes()).decode(), "version": ORT_VERSION}
    _write(out / "ort-binary.js", _js_assign("INVLAB_ORT_BINARY", binary))
    records = manifest()
    networks, samples, missing = [], {}, {}
    for (dataset, model), name in LESSONS.items():
        ident = name.removesuffix(".pt")
        onnx_path = out / "networks" / f"{ident}.onnx"
        network = lesson_model(model, dataset)  # verified, loaded once: its graph and its class names
        export_loaded(network, onnx_path, regions=True)  # with the regions view's segment-walking graph
        data = base64.b64encode(onnx_path.read_bytes()).decode()
        onnx_path.unlink()
        _write(out / "networks" / f"{ident}.js",
               f"window.INVLAB_NETWORK_FILES = window.INVLAB_NETWORK_FILES || {{}};\n"
               f"window.INVLAB_NETWORK_FILES[{json.dumps(ident)}] = {json.dumps(data)};\n")
        if dataset not in samples and dataset not in missing:
            try:
                samples[dataset] = sample_images(dataset, root=data_root)
            except (FileNotFoundError, RuntimeError, OSError) as err:  # offline, the data set not fetched
                missing[dataset] = str(err)
                print(f"explore_build: the explorer ships no {dataset} test images ({err}); "
                      f"fetch them with: invlab data fetch {dataset}", file=sys.stderr)
        names = network.data_info["class_names"]
        networks.append({"id": ident, "model": model, "dataset": dataset, "file": f"networks/{ident}.js",
                         "test_accuracy": records[name]["test_accuracy"], "class_names": list(names)})
    contract = {"input": INPUT, "outputs": list(OUTPUTS), "top_k_output": TOP_K_OUTPUT, "max_bytes": MAX_BYTES}
    catalogue = {"contract": contract, "networks": networks, "samples": samples,
                 "figures": {n["dataset"]: page_figures(n["class_names"]) for n in networks},
                 "generic_figures": page_figures([str(c) for c in range(10)])}
    _write(out / "catalogue.js", _js_assign("INVLAB_CATALOGUE", catalogue))
    for src in sorted(SOURCES.glob("*.js")) + sorted(SOURCES.glob("*.css")):
        shutil.copy(src, out / src.name)
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/site/explore_build.py OUT_FOLDER")
    sizes = build_assets(sys.argv[1])
    for name, size in sizes.items():
        print(f"{size:>12,d}  {name}")
    print(f"{sum(sizes.values()):>12,d}  in all")
