"""The training machinery: a run's config (`config`), the loop (`trainer`, `loop`: samplers,
schedules, device), checkpoints, loss-weight schedules (`schedules`), learned weights
(`hyper`), CUDA graphs (`graphs`), evaluation (`evaluate`) and the options every command
builds from the config (`options`)."""
