"""``invlab.sweep``: the public names of sweeps (Optuna studies of many trainings), kept where users
import them from. The code lives in :mod:`invlab.experiments.sweep`."""

from invlab.experiments.sweep import (
    DEFAULT_STORAGE,
    PRUNERS,
    RESULT_KEYS,
    SPACES,
    SQLITE_BUSY_TIMEOUT_MS,
    config_for,
    create,
    create_runs,
    entry_name,
    failures,
    grid_points,
    load_space,
    make_pruner,
    markdown,
    open_storage,
    opened,
    report,
    run_study,
    storage_url,
    summarise,
    trial_table,
    work,
    write_figures,
)

__all__ = ["DEFAULT_STORAGE", "PRUNERS", "RESULT_KEYS", "SPACES", "SQLITE_BUSY_TIMEOUT_MS", "config_for", "create",
           "create_runs", "entry_name", "failures", "grid_points", "load_space", "make_pruner", "markdown",
           "open_storage", "opened", "report", "run_study", "storage_url", "summarise", "trial_table", "work",
           "write_figures"]
