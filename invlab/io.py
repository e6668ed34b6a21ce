"""Small file helpers: checksums, atomic writes, safe loads, writable folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    A crash or an exception leaves either the old file or nothing, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def markdown_table(headers: list, rows: list[list]) -> str:
    """A GitHub Markdown table (``tabulate``) of ``rows`` under ``headers``; cells are
    printed as given (format numbers before), ``None`` as an ellipsis."""
    from tabulate import tabulate

    return tabulate([["…" if c is None else c for c in row] for row in rows], headers=headers, tablefmt="github",
                    disable_numparse=True)


def save_report(obj: Any, path: str | os.PathLike, markdown: str) -> Path:
    """Atomically write a study's results: ``obj`` as JSON at ``path`` and ``markdown``
    beside it (the same name, ``.md``). Returns the JSON's path."""
    out = save_json(obj, path)
    atomic_write(out.with_suffix(".md"), lambda p: p.write_text(markdown))
    return out


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """Atomically ``torch.save`` ``obj``.

    Serialised in memory first, then written as plain bytes: a failed write (a full disk, a
    read-only folder) raises the ``OSError`` that names it, where ``torch.save`` to a file
    reports a zip-writer internal ("unexpected pos")."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda p: p.write_bytes(buffer.getbuffer()))


def load_torch(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers only."""
    return torch.load(path, map_location=map_location, weights_only=True)


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"cannot write to output folder {str(path)!r} ({err.strerror or err}); "
            "choose another folder with --out or fix its permissions") from err
    return path


def check_writable_target(path: str | os.PathLike) -> Path:
    """Check, without creating anything, that folder ``path`` could be created and written:
    it, or its nearest existing ancestor, must be a writable folder."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        why = "is not a folder" if not probe.is_dir() else "is not writable"
        raise PermissionError(f"cannot write to output folder {str(path)!r} ({str(probe)!r} {why}); "
                              "choose another folder with --out or fix its permissions")
    return path


def save_figure_html(fig, path: str | os.PathLike, plotlyjs: bool | str = True) -> Path:
    """Atomically write a plotly figure as an HTML page. ``plotlyjs=True`` embeds plotly.js (works
    offline, ~4.7 MB); ``"directory"`` loads it from a ``plotly.min.js`` written once beside the
    page (offline too, light pages: a report folder of several figures); ``"cdn"`` from plotly's
    CDN (blank without the network). Here, a leaf below every package, so that the experiments'
    reports write figures without the plotting layer above them."""
    path = Path(path)
    if plotlyjs == "directory":
        _plotly_js_beside(path)
    return atomic_write(path, lambda p: fig.write_html(p, include_plotlyjs=plotlyjs, full_html=True))


def _plotly_js_beside(page: Path) -> None:
    """plotly.js as ``plotly.min.js`` in the page's folder, once (pages written with "directory")."""
    import plotly.offline

    js = page.parent / "plotly.min.js"
    if not js.exists():
        atomic_write(js, lambda p: p.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8"))


#: A figure file's ``format``: a list of plotly figures (data and layout), no script.
FIGURES_FORMAT = "invlab-figures-1"


def save_figures(figures, path: str | os.PathLike) -> Path:
    """Atomically write one plotly figure or a list of them as JSON (``.json``): the figures'
    data and layout, which the documentation site draws with its own plotly.js and
    ``docs/site/static_figures.py`` pictures as PNG; ``.html`` writes a page that works
    offline instead (plotly.js in a file beside it). The repository keeps figures as JSON."""
    path = Path(path)
    figures = list(figures) if isinstance(figures, (list, tuple)) else [figures]
    if path.suffix == ".html":
        if len(figures) == 1:
            return save_figure_html(figures[0], path, plotlyjs="directory")
        body = "".join(f.to_html(full_html=False, include_plotlyjs="directory" if i == 0 else False)
                       for i, f in enumerate(figures))
        _plotly_js_beside(path)
        return atomic_write(path, lambda p: p.write_text(f'<html><head><meta charset="utf-8"></head><body>{body}'
                                                         "</body></html>", encoding="utf-8"))
    if path.suffix != ".json":
        raise ValueError(f"{path}: a figure file ends in .json (the figures' data) or .html (a page to open)")
    import plotly.io as pio

    blob = {"format": FIGURES_FORMAT, "figures": [json.loads(pio.to_json(f, validate=False)) for f in figures]}
    return atomic_write(path, lambda p: p.write_text(json.dumps(blob, separators=(",", ":")) + "\n",
                                                     encoding="utf-8"))


def load_figures(path: str | os.PathLike, as_dict: bool = False) -> list:
    """The plotly figures of a file written by :func:`save_figures`: ``go.Figure`` each, or
    with ``as_dict`` the plain dictionaries (no validation: fast, for drawing them as they are)."""
    blob = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(blob, dict) or blob.get("format") != FIGURES_FORMAT:
        raise ValueError(f"{path} is not a figure file of invlab (expected format {FIGURES_FORMAT!r}): write it "
                         "with invlab.io.save_figures")
    if as_dict:
        return blob["figures"]
    import plotly.graph_objects as go

    return [go.Figure(f) for f in blob["figures"]]
