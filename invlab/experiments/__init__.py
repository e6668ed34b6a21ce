"""Experiment tooling: many trainings as Optuna studies (`sweep`, its public names also as
`invlab.sweep`), resumable runs (`runs`) and lists of them as one study (`studies`). `provenance`
is a former name (deprecated): it lives in `invlab.training.provenance`."""
