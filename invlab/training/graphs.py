"""Training steps replayed as CUDA graphs (``TrainConfig(cuda_graph=True)``, ``--cuda-graph``).

One step of the inversion loss launches several hundred small kernels: the forward pass,
the vector-Jacobian product of the logits with themselves, the backward pass through both,
and Adam. For the paper's networks on MNIST a GPU finishes each kernel faster than Python
launches the next, so the launches, not the arithmetic, set the pace. A CUDA graph records
the kernels of one step once and replays them with one launch (PyTorch's whole-network
capture, ``torch.cuda.graphs``).

The maths is unchanged: the replay runs the same kernels on the same parameter, gradient
and optimiser buffers; each batch is copied into the graph's static input buffers first.
What capture needs, and how it is met:

* no device-to-host synchronisation inside the step: the loss takes the labelled samples as
  "the first n" (an int) instead of a boolean mask, and skips its input checks (the first
  ``WARMUP`` steps run eagerly, checks included);
* the learning rate as a device tensor (the schedule fills it between replays) and Adam's
  ``capturable`` mode (its step counters live on the GPU);
* fixed shapes and loss weights: constant alpha and beta, the same batch composition every
  step (``TrainConfig`` refuses schedules, learned weights and per-layer terms with it).

Checkpoints stay portable: :meth:`GraphedStep.portable` writes the optimiser and scheduler
state as an eager run would (float learning rate, step counters on the CPU), so a run
started with graphs resumes without them, on a CPU, and the other way round.
"""

from __future__ import annotations

import torch

from invlab.losses import LOSS_KEYS


class GraphedStep:
    """The training step of a :class:`~invlab.train.Trainer`, captured once, then replayed.

    ``step(x, y, n_labelled)`` takes one optimiser step on the batch and returns the
    detached losses ``LOSS_KEYS`` stacked in one device tensor. The first ``warmup`` steps
    run eagerly on a side stream (they initialise Adam's state and the libraries' lazy
    handles, as capture requires); the next one is captured and every later one replays it.
    """

    WARMUP = 3

    def __init__(self, trainer, warmup: int = WARMUP):
        if trainer.device.type != "cuda":
            raise ValueError(f"cuda_graph needs a CUDA device, but this run is on {trainer.device}: "
                             "use --device cuda, or drop --cuda-graph")
        self.trainer, self.warmup = trainer, warmup
        self.reset()

    def reset(self) -> None:
        """Forget the captured graph (after the optimiser state was replaced, e.g. on resume)."""
        self.graph, self.eager_steps = None, 0
        self.static: tuple | None = None

    def _capturable(self) -> None:
        """Learning rates as device tensors and Adam in capturable mode (step counters on the GPU)."""
        dev = self.trainer.device
        self.lrs = []
        for group in self.trainer.optimizer.param_groups:
            group["capturable"] = True
            lr = group["lr"]
            if not isinstance(lr, torch.Tensor):
                lr = group["lr"] = torch.tensor(float(lr), dtype=torch.float32, device=dev)
            self.lrs.append(lr)
        for state in self.trainer.optimizer.state.values():
            if "step" in state:
                state["step"] = state["step"].to(device=dev, dtype=torch.float32)

    def _set_lr(self) -> None:
        """Put this step's rate in the tensor the graph reads: the scheduler filled it already
        (recent PyTorch), or wrote a float in its place (older), which is copied in."""
        for group, lr in zip(self.trainer.optimizer.param_groups, self.lrs):
            if group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr

    def _step(self, x, y, n_labelled: int, eager: bool) -> torch.Tensor:
        """One step; ``eager`` (a warm-up step) checks its input and frees the gradients
        itself, a captured step may do neither (they were freed before capture)."""
        t = self.trainer
        out = t.loss_at()(t.model, x, y, n_labelled, check=eager)
        if eager:
            t.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(out["total"], inputs=t.params)
        t.optimizer.step()
        return torch.stack([out[k].detach().float() for k in LOSS_KEYS])

    def step(self, x: torch.Tensor, y: torch.Tensor, n_labelled: int) -> torch.Tensor:
        t = self.trainer
        if self.graph is None and self.eager_steps == 0:
            self._capturable()
        self._set_lr()
        if self.graph is None and self.eager_steps < self.warmup:
            side = torch.cuda.Stream(t.device)
            side.wait_stream(torch.cuda.current_stream(t.device))
            with torch.cuda.stream(side):
                losses = self._step(x, y, n_labelled, eager=True)
            torch.cuda.current_stream(t.device).wait_stream(side)
            self.eager_steps += 1
            return losses
        if self.graph is None:
            self.static = (x.clone(), y.clone(), n_labelled)  # clone keeps the memory format
            t.optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.losses = self._step(self.static[0], self.static[1], n_labelled, eager=False)
        else:
            sx, sy, sn = self.static
            if x.shape != sx.shape or n_labelled != sn:
                raise RuntimeError(f"the captured step took batches {tuple(sx.shape)} with {sn} labelled, "
                                   f"got {tuple(x.shape)} with {n_labelled}: cuda_graph needs a fixed batch")
            sx.copy_(x)
            sy.copy_(y)
        self.graph.replay()
        return self.losses

    @staticmethod
    def portable(optimizer_state: dict, scheduler_state: dict) -> tuple[dict, dict]:
        """The optimiser and scheduler state as an eager run writes them: float learning
        rates, not capturable, step counters on the CPU (copies; the live state is untouched)."""
        groups = [{**g, "lr": float(g["lr"]), "capturable": False} for g in optimizer_state["param_groups"]]
        state = {k: {**s, "step": s["step"].detach().to("cpu", torch.float32)} if "step" in s else s
                 for k, s in optimizer_state["state"].items()}
        sched = {**scheduler_state, "_last_lr": [float(v) for v in scheduler_state.get("_last_lr", [])]}
        return {**optimizer_state, "state": state, "param_groups": groups}, sched


__all__ = ["GraphedStep", "LOSS_KEYS"]
