#!/usr/bin/env bash
# Table 2 on one GPU: all twelve topologies x label draws 0-4 with the recipe of
# docs/RESULTS.md (2000 steps, cosine decay, center-maxabs, class-balance term, the paper's
# (alpha, beta) and learning rate per topology), plus the 20 000-step point of the
# length study for smallcnn-mean, all at once on one GPU, within a wall-clock budget.
#
#   benchmarks/table2_gpu.sh OUT_DIR [MINUTES] [JOBS]
#
# Runs many trainings side by side on the GPU (JOBS processes for Table 2, 5 for the long
# runs; the models are small, so one alone leaves the GPU mostly idle). After MINUTES
# (default 8) every run still going is stopped; each finished run keeps its result.json
# under runs/, and the reports cover the finished runs only (`--report-only`: a draw
# not finished is listed under `missing_seeds`). Run the script again with the same
# runs/ folder to finish the rest: unfinished runs resume from their checkpoints.
#
# Needs: python3 with torch (CUDA), tqdm, numpy; MNIST under data/ (mnist.pt, or the
# classic mnist.pkl.gz, from which mnist.pt is built). plotly is optional (figures are
# then made later with the same commands without --no-figures). Outside a git checkout,
# set INVLAB_COMMIT to the commit the code was copied from, for the provenance.
# A smoke run of the script itself on a CPU (MODELS: a subset of the topologies):
#   DEVICE=cpu STEPS=4 MODELS="smallcnn-mean smallucnn" benchmarks/table2_gpu.sh /tmp/x 2 2
# (STEPS shortens every run; its run folders are keyed apart from the real ones).
# Writes to OUT_DIR: table2_gpu.json/.md, recipe_study_20k_gpu.json/.md, the logs, and
# runs.tgz (the result.json of every finished run, to report on another machine).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: benchmarks/table2_gpu.sh OUT_DIR [MINUTES] [JOBS]}
minutes=${2:-8}
jobs=${3:-11}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
smoke=()
[ -n "${STEPS:-}" ] && smoke=(--steps "$STEPS" --eval-every "$STEPS")
read -r -a models <<<"${MODELS:-smallcnn-mean smallcnn-max smallucnn largecnn-mean largecnn-max largeucnn resnet2-32-mean resnet2-32-max uresnet2-32 resnet3-16-mean resnet3-16-max uresnet3-16}"

DEVICE=$device $py - <<'EOF' || exit 1
import os
import torch
if os.environ["DEVICE"].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA GPU: this script is for a GPU machine (DEVICE=cpu for a smoke run)"
    print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
from invlab.data.mnist import fetch_mnist
fetch_mnist(online=False)
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

table2=(benchmarks/table2.py --parts table2 --models "${models[@]}" --seeds 0 1 2 3 4 --other-seeds 0 1 2 3 4 --steps 2000
        --schedule cosine --balance 1 --preprocess center-maxabs --eval-every 250 --device "$device"
        --runs-dir runs/table2_gpu --out "$out/table2_gpu.json" --no-figures --keep-going "${smoke[@]}")
long=(benchmarks/recipe_study.py --arms balance-maxabs-20k --seeds 0 1 2 3 4 --device "$device"
      --runs-dir runs/recipe_study_gpu --out "$out/recipe_study_20k_gpu.json" --figure "" --keep-going
      "${smoke[@]}")

start=$(date +%s)
setsid $py "${table2[@]}" --jobs "$jobs" >"$out/table2_gpu.log" 2>&1 &
t2=$!
setsid $py "${long[@]}" --jobs 5 >"$out/recipe_study_20k_gpu.log" 2>&1 &
lg=$!
deadline=$((start + minutes * 60))
while { kill -0 $t2 || kill -0 $lg; } 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do
  sleep 10
  echo "[$(($(date +%s) - start)) s] finished: $(find runs/table2_gpu runs/recipe_study_gpu -name result.json \
    2>/dev/null | wc -l) runs; $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader \
    2>/dev/null)"
done
for pid in $t2 $lg; do kill -- -$pid 2>/dev/null; done
sleep 2
echo "training stopped after $(($(date +%s) - start)) s"

$py "${table2[@]}" --report-only
$py "${long[@]}" --report-only
tar czf "$out/runs.tgz" $(find runs/table2_gpu runs/recipe_study_gpu -name result.json 2>/dev/null)
ls -l "$out"
