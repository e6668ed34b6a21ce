"""The training machinery: a run's config (`config`: TrainConfig, its checks and run keys), the loop
(`trainer`), the samplers (`sampling`), the learning-rate schedules (`lr_schedules`), the device
(`device`), checkpoints (`checkpoints`), the loss weights over a run (`loss_weights`), learned weights
(`hyper`), CUDA graphs (`graphs`), evaluation (`evaluate`), a run's guard against signals and a second
writer (`guard`), the provenance of every result (`provenance`) and the options every command builds
from the config (`options`). `loop` and `schedules` are former names (deprecated)."""
