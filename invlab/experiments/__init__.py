"""Experiment tooling: many trainings as Optuna studies (`sweep`), resumable runs and lists of
them (`studies`), and the provenance of every result (`provenance`)."""
