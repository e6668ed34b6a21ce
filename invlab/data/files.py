"""Your own data: ``folder:PATH`` (one subfolder of images per class) and ``npz:PATH``.

``folder:PATH`` is read with torchvision's ``ImageFolder`` conventions: one subfolder per
class, named by its class; optionally ``train/``, ``val/`` and ``test/`` subfolders, each
laid out that way. Without them, test and validation are carved from the images with a
fixed split seed (recorded in ``info["split"]``). Grey images give one channel; if any
image has colour, all are read as RGB. Images of different sizes are refused unless
``resize=(H, W)`` is given (``--resize H W``).

``npz:PATH`` is a NumPy archive with arrays ``x`` (N, C, H, W) images or (N, C, L)
signals and ``y`` (N,) integer labels, optionally ``x_test``/``y_test``, ``x_val``/``y_val``
and ``class_names``. uint8 arrays are scaled to [0, 1]; floats are taken as they are.
It is read with ``allow_pickle=False``: an archive of Python objects is refused.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from invlab.data.arrays import semi_supervised
from invlab.data.registry import register_dataset

_GREY_MODES = ("1", "L", "I", "I;16", "F")


def _class_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist (folder:PATH needs one subfolder of images "
                                "per class)")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {folder} has no class subfolders: put each class's images in a subfolder "
                         "named by the class (PATH/cat/1.png, PATH/dog/2.png, ...)")
    return classes


def _read_images(folder: Path, class_names: list[str] | None, resize: tuple[int, int] | None):
    """Images of ``folder`` (a folder per class) as PIL images and labels, every file checked."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder

    classes = _class_folders(folder)
    for c in classes:
        if not any(f.is_file() and not f.name.startswith(".") for f in c.rglob("*")):
            raise ValueError(f"class folder {c} is empty: put images of class {c.name!r} in it, or remove it")
    names = [c.name for c in classes]
    if class_names is not None:
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise ValueError(f"{folder} has class folders {unknown} that train/ does not have; every class of "
                             f"val/ and test/ must be one of train/'s ({', '.join(class_names)})")
    else:
        class_names = names

    def load(path: str):
        try:
            with Image.open(path) as img:
                img.load()
                return img.copy()
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path} is not an image that PIL can read ({type(err).__name__}); remove it or move it "
                             "out of the image folder") from None

    ds = ImageFolder(str(folder), loader=load, is_valid_file=lambda p: not Path(p).name.startswith("."))
    images = [ds.loader(path) for path, _ in ds.samples]
    paths = [path for path, _ in ds.samples]
    labels = [class_names.index(ds.classes[t]) for _, t in ds.samples]
    return images, paths, labels, class_names


def _to_tensor(images, paths, resize: tuple[int, int] | None) -> torch.Tensor:
    from torchvision.transforms.functional import pil_to_tensor
    from torchvision.transforms.functional import resize as tv_resize

    mode = "L" if all(img.mode in _GREY_MODES for img in images) else "RGB"
    images = [img.convert(mode) for img in images]
    if resize is not None:
        images = [tv_resize(img, list(resize), antialias=True) for img in images]
    sizes = {}
    for img, path in zip(images, paths):
        sizes.setdefault(img.size, path)
    if len(sizes) > 1:
        (s1, p1), (s2, p2) = list(sizes.items())[:2]
        raise ValueError(f"images of different sizes in one folder: {p1} is {s1[0]}x{s1[1]} and {p2} is "
                         f"{s2[0]}x{s2[1]} (width x height); resize them all with --resize H W (resize=(H, W))")
    return torch.stack([pil_to_tensor(img) for img in images]).float() / 255  # (N, C, H, W)


@functools.lru_cache(maxsize=4)
def _read_folder(path: str, resize: tuple[int, int] | None):
    folder = Path(path)
    parts = {p: folder / p for p in ("train", "val", "test") if (folder / p).is_dir()}
    if parts and "train" not in parts:
        raise ValueError(f"{folder} has {'/'.join(parts)}/ but no train/: add train/ or use one folder per class")
    out, class_names = {}, None
    for part, sub in (parts or {"all": folder}).items():
        images, paths, labels, class_names = _read_images(sub, class_names, resize)
        out[part] = (_to_tensor(images, paths, resize), torch.tensor(labels))
    shapes = {p: tuple(x.shape[1:]) for p, (x, _) in out.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{folder}: the parts hold images of different shapes {shapes}; use --resize H W")
    return out, class_names


def load_folder(arg: str, labels_per_class: int | None = 5, seed: int = 0, val_size: int | None = None,
                root=None, resize: tuple[int, int] | list[int] | None = None):
    """``folder:PATH``: an image folder with one subfolder per class (optionally train/val/test)."""
    if root is not None:
        raise ValueError("folder:PATH names its own folder; drop --data-root")
    if resize is not None:
        resize = tuple(int(v) for v in resize)
        if len(resize) != 2 or min(resize) < 1:
            raise ValueError(f"resize must be two positive integers H W, got {resize}")
    path = Path(arg).expanduser()
    parts, class_names = _read_folder(str(path.resolve()), resize)
    x, y = parts.get("train", parts.get("all"))
    test, val = parts.get("test", (None, None)), parts.get("val", (None, None))
    return semi_supervised(f"folder:{arg}", x, y, *test, labels_per_class=labels_per_class, seed=seed,
                           val_size=val_size, x_val=val[0], y_val=val[1], class_names=class_names,
                           source=f"image folder {path}" + (f", resized to {resize[0]}x{resize[1]}" if resize else ""))


def load_npz(arg: str, labels_per_class: int | None = 5, seed: int = 0, val_size: int | None = None, root=None):
    """``npz:PATH``: arrays x, y (and optionally x_test, y_test, x_val, y_val, class_names)."""
    if root is not None:
        raise ValueError("npz:PATH names its own file; drop --data-root")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"npz file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as err:
        raise ValueError(
            f"{path} cannot be read without pickle ({err}); save plain numeric arrays with np.savez"
        ) from None
    except (OSError, EOFError, AttributeError) as err:
        raise ValueError(f"{path} is not a NumPy .npz archive ({err})") from None
    fix = f"save it with np.savez({path.name!r}, x=..., y=...)"
    for key in ("x", "y"):
        if key not in arrays:
            raise ValueError(f"{path} has no array {key!r} (it has {', '.join(sorted(arrays)) or 'none'}); {fix}")
    for a, b in (("x_test", "y_test"), ("x_val", "y_val")):
        if (a in arrays) != (b in arrays):
            raise ValueError(f"{path} has {a if a in arrays else b!r} without {b if a in arrays else a!r}; give both")

    def examples(key):
        if key not in arrays:
            return None
        a = arrays[key]
        if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
            raise ValueError(f"{path}: array {key!r} has dtype {a.dtype}; it must be numeric")
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.float() / 255 if a.dtype == np.uint8 and key.startswith("x") else t

    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else None
    return semi_supervised(f"npz:{arg}", examples("x"), examples("y"), examples("x_test"), examples("y_test"),
                           labels_per_class=labels_per_class, seed=seed, val_size=val_size,
                           x_val=examples("x_val"), y_val=examples("y_val"), class_names=names,
                           source=f"npz archive {path}")


register_dataset("folder", load_folder, parametric=True, options=("resize",),
                 description="an image folder with one subfolder per class (torchvision ImageFolder)")
register_dataset("npz", load_npz, parametric=True, description="a NumPy archive with arrays x, y")

__all__ = ["load_folder", "load_npz"]
