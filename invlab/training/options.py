"""One source of options: every :class:`~invlab.train.TrainConfig` field declares its help,
choices and flag once (:func:`option`), and :func:`add_config_options` turns the fields into
command-line options for `invlab train` and the benchmarks; :func:`config_kwargs` turns the
parsed options back into TrainConfig keywords. A new field is a new flag everywhere.

Types come from the field's annotation: ``bool`` gives ``--x/--no-x``, ``int``/``float``/
``str`` (optionally ``| None``) a typed value, ``tuple[float, ...]`` a list, ``tuple[int,
int]`` a pair; ``type="weight"`` (a number or a schedule, :mod:`invlab.training.loss_weights`),
``type="dataset"`` (a registered data set name) and ``type="layers"`` (repeated
``NAME=GAMMA``) name the three special parsers.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import typing
from typing import Any


def option(default: Any, help: str, *, flag: str | None = None, metavar=None, choices=None, type: str | None = None):
    """A dataclass field whose command-line option is described here (see the module docstring)."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "type": type}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag(field: dataclasses.Field) -> str:
    """The command-line flag of ``field``: its own, else ``--name-with-dashes``."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def dataset_arg(name: str) -> str:
    """argparse type of ``--dataset``: a registered name (``folder:PATH`` and ``npz:PATH`` included)."""
    from invlab.data import dataset_entry

    try:
        dataset_entry(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def layer_arg(item: str) -> tuple[str, str]:
    """argparse type of ``--layer NAME=GAMMA``: the pair, the weight as typed (TrainConfig reads it)."""
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"--layer {item!r}: expected NAME=GAMMA, e.g. --layer features.2=0.06")
    return name, value


def _kwargs(field: dataclasses.Field, hint, default) -> dict:
    meta = field.metadata
    out: dict = {"dest": field.name, "help": meta["help"].replace("%", "%%")}
    if meta.get("metavar") is not None:
        out["metavar"] = meta["metavar"]
    special = meta.get("type")
    if special == "layers":
        return {**out, "action": "append", "type": layer_arg, "default": []}
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0] if len(args) == 1 else hint
    if special == "weight":
        out["type"] = str  # a number or a schedule, read (and checked) by TrainConfig
    elif special == "dataset":
        out["type"] = dataset_arg
    elif base is bool:
        out["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is tuple:
        items = typing.get_args(base)
        out.update(type=items[0], nargs="+" if items[-1] is Ellipsis else len(items))
    else:
        out["type"] = base
    if meta.get("choices"):
        out["choices"] = list(meta["choices"])
    if isinstance(default, tuple):
        default = list(default)
    out["default"] = default
    if default is not None and out.get("action") is not argparse.BooleanOptionalAction:
        out["help"] += " (default %(default)s)"
    elif out.get("action") is argparse.BooleanOptionalAction and default is not None:
        out["help"] += f" (default {'on' if default else 'off'})"
    return out


def add_config_options(parser, defaults, only=None, exclude=(), overrides: dict | None = None) -> None:
    """Add an option for every field of the dataclass instance ``defaults`` (``only`` those
    named, none of ``exclude``), with ``defaults``' values as defaults (``overrides`` wins)."""
    cls = type(defaults)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [n for n in (*(only or ()), *exclude, *(overrides or {})) if n not in names]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)}")
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata or (only is not None and field.name not in only) or field.name in exclude:
            continue
        default = (overrides or {}).get(field.name, getattr(defaults, field.name))
        parser.add_argument(flag(field), **_kwargs(field, hints[field.name], default))


def config_kwargs(args: argparse.Namespace, cls) -> dict:
    """Keywords of the dataclass ``cls`` (:class:`~invlab.training.config.TrainConfig`) from parsed
    options: every field the parser has (lists back to tuples, ``--layer`` items to a dict)."""
    out = {}
    for field in dataclasses.fields(cls):
        if not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if field.metadata.get("type") == "layers":
            value = dict(value)
        elif isinstance(value, list):
            value = tuple(value)
        out[field.name] = value
    return out


__all__ = ["add_config_options", "config_kwargs", "dataset_arg", "flag", "layer_arg", "option"]


def add_study_options(p: argparse.ArgumentParser, storage: bool = False) -> None:
    """The options of every script that runs a list of runs through
    :func:`invlab.experiments.studies.run_many`: ``--jobs``, ``--report-only``, ``--keep-going`` (and,
    with ``storage``, ``--storage`` and ``--study``). Check them with :func:`check_study_options`."""
    p.add_argument("--jobs", type=int, default=1,
                   help="workers: the runs are one `invlab sweep` study, done by N worker processes that share the "
                        "cores (N = 1: this process); run the command again to continue a study cut short")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: report the runs already finished under --runs-dir (a study under way, or "
                        "runs made elsewhere); runs not finished are left out")
    p.add_argument("--keep-going", action="store_true",
                   help="a run that fails (diverges) is reported and left out; the others carry on")
    if storage:
        p.add_argument("--storage", default=None,
                       help="Optuna storage of that study (default: SQLite under --runs-dir; a PostgreSQL URL lets "
                            "workers on other hosts join: `invlab sweep work --study STUDY --storage URL`)")
        p.add_argument("--study", default=None, help="study name (default: derived from the planned runs)")


def check_study_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args
