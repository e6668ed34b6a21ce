"""`invlab` held at a known training step, for the tests that signal a real run: race-free by construction.

    python tests/paused_invlab.py STEP DIR ARGS...    # as `invlab ARGS...`

Before training step STEP (0-based) the run writes ``DIR/paused`` and waits until ``DIR/go``
exists. A test waits for ``paused``, sends its signal, then writes ``go``: the signal lands while
the run cannot have moved on (nor finished), so the run stops at a known point whatever the
machine's speed. Only the first run of the process to reach STEP waits (a sweep worker's
later trials do not).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from invlab.cli import main as invlab
    from invlab.training.trainer import Trainer

    at, folder, args = int(argv[0]), Path(argv[1]), argv[2:]
    real_step = Trainer.train_step

    def train_step(self):
        if self.step == at and not (folder / "paused").exists():
            (folder / "paused").write_text(str(self.step))
            while not (folder / "go").exists():
                time.sleep(0.01)
        return real_step(self)

    Trainer.train_step = train_step
    return invlab(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
