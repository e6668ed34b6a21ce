#!/usr/bin/env bash
# Table 2 on one GPU: the twelve topologies x label draws 0-4 with the recipe of
# docs/site/results/mnist.md (2000 steps, cosine decay, center-maxabs, class-balance term, the paper's
# (alpha, beta) and learning rate per topology), within a wall-clock budget.
#
#   benchmarks/table2_gpu.sh OUT_DIR [MINUTES] [LANES]
#
# The runs are one invlab sweep study (benchmarks/paper/table2.py --jobs LANES) done by LANES
# (default 3) worker processes that share the GPU and take runs draw by draw (every
# topology's draw 0, then draw 1, ...), so a budget cut short still covers every topology.
# A few workers, not one per run: GPU contexts take turns, and sixteen of them at once gained
# little over running one after another. Each step is replayed as a CUDA graph (--cuda-graph, invlab.training.graphs:
# the same maths, a fraction of the kernel launches) once benchmarks/speed/cuda_graph_check.py
# has shown, on this GPU, that graph and eager steps agree (else eager; CUDA_GRAPH=0: eager).
# MINUTES (default 8) after the start, every run still going is stopped; each finished run keeps its
# result.json under runs/, and the report covers the finished runs only (--report-only:
# a draw not finished is listed under missing_seeds). Run the script again with the same
# runs/ folder to finish the rest: unfinished runs resume from their checkpoints.
#
# Needs: python3 with torch (CUDA), tqdm, numpy, optuna; MNIST under data/ (mnist.pt, or the
# classic mnist.pkl.gz, from which mnist.pt is built). plotly is optional (figures are
# then made later with the same commands without --no-figures). Outside a git checkout,
# set INVLAB_COMMIT to the commit the code was copied from, for the provenance.
# A smoke run of the script itself on a CPU (MODELS: a subset of the topologies):
#   DEVICE=cpu CUDA_GRAPH=0 STEPS=4 MODELS="smallcnn-mean smallucnn" benchmarks/table2_gpu.sh /tmp/x 2 2
# (STEPS shortens every run; its run folders are keyed apart from the real ones).
# EXTRA_ARGS adds options of benchmarks/paper/table2.py to every run, e.g. EXTRA_ARGS="--init xavier"
# (the runs are then keyed apart too).
# Writes to OUT_DIR: cuda_graph_check.json/.log, table2_gpu.json/.md, train.log, and runs.tgz (the result.json
# of every finished run, to report on another machine).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: benchmarks/table2_gpu.sh OUT_DIR [MINUTES] [LANES]}
minutes=${2:-8}
lanes=${3:-3}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
extra=()
[ -n "${STEPS:-}" ] && extra+=(--steps "$STEPS" --eval-every "$STEPS")
read -r -a more <<<"${EXTRA_ARGS:-}"  # more options of benchmarks/paper/table2.py, e.g. EXTRA_ARGS="--init xavier"
extra+=("${more[@]}")
read -r -a models <<<"${MODELS:-smallcnn-mean smallcnn-max smallucnn largecnn-mean largecnn-max largeucnn resnet2-32-mean resnet2-32-max uresnet2-32 resnet3-16-mean resnet3-16-max uresnet3-16}"

DEVICE=$device $py - <<'PY' || exit 1
import os
import torch
if os.environ["DEVICE"].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA GPU: this script is for a GPU machine (DEVICE=cpu for a smoke run)"
    print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
from invlab.data.mnist import fetch_mnist
fetch_mnist(online=False)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

start=$(date +%s)  # MINUTES counts from here: the check below included
if [ "${CUDA_GRAPH:-1}" = 1 ]; then
  # The same steps eager and as CUDA graphs on this GPU, timed; graphs only if they agree.
  if timeout 240 "$py" -m benchmarks.speed.cuda_graph_check --models ${CHECK_MODELS:-smallcnn-mean largecnn-mean resnet3-16-mean} \
      --out "$out/cuda_graph_check.json" >"$out/cuda_graph_check.log" 2>&1; then
    extra+=(--cuda-graph)
    echo "CUDA graphs agree with eager steps: training with --cuda-graph"
  else
    echo "CUDA-graph check failed (see $out/cuda_graph_check.log): eager steps"
  fi
  tail -n 5 "$out/cuda_graph_check.log"
fi

common=(--parts table2 --seeds 0 1 2 3 4 --other-seeds 0 1 2 3 4 --steps 2000 --schedule cosine --balance 1
        --preprocess center-maxabs --eval-every 250 --device "$device" --runs-dir runs/table2_gpu --no-figures
        --keep-going "${extra[@]}")

echo "$lanes workers: ${models[*]}"
setsid "$py" -m benchmarks.paper.table2 "${common[@]}" --models "${models[@]}" --jobs "$lanes" --out "$out/train.json" \
  >"$out/train.log" 2>&1 &
pid=$!
deadline=$(awk -v s="$start" -v m="$minutes" 'BEGIN { print int(s + m * 60) }')  # MINUTES may be 6.5
while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do
  sleep 10
  echo "[$(($(date +%s) - start)) s] finished: $(find runs/table2_gpu -name result.json 2>/dev/null | wc -l) runs;" \
    "$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
done
kill -- -"$pid" 2>/dev/null  # the study's process group: its workers too
sleep 2
echo "training stopped after $(($(date +%s) - start)) s"

"$py" -m benchmarks.paper.table2 "${common[@]}" --models "${models[@]}" --out "$out/table2_gpu.json" --report-only
find runs/table2_gpu -name result.json -print0 2>/dev/null | tar czf "$out/runs.tgz" --null -T -
ls -l "$out"
