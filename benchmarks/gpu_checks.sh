#!/usr/bin/env bash
# Every GPU check and benchmark that the engine issue owes, as one prepared run
# (about 8 minutes on one H100 after the machine starts). Each step has its own
# time limit, so one slow step cannot eat the others; each writes its output
# to $OUT (the device tool's output folder; benchmarks/results/gpu otherwise).
#
#   bash benchmarks/gpu_checks.sh                    # on a machine with a CUDA GPU
#   pip install .whl/zuko-*.whl first to add zuko's rows (a carried wheel)
#
# What it measures: tests/test_cuda.py (captured fits of all four estimators,
# GPU-fitted pickles that score alike on the CPU), the training / scoring /
# sampling throughput of benchmarks.speed at batch 256 and 4096, and default
# fits to early stopping of benchmarks.time_to_fit (tables only; MNIST when
# shared/data/mnist is carried).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep its output and exit status
    local name=$1 seconds=$2
    shift 2
    echo "== $name (limit $seconds s)"
    timeout "$seconds" "$@" > "$OUT/$name.txt" 2>&1
    echo "exit $?" >> "$OUT/$name.txt"
    tail -n 25 "$OUT/$name.txt"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1
step test_cuda 150 python -m pytest -q -p no:cacheprovider tests/test_cuda.py
step speed_b256 120 python -m benchmarks.speed --device cuda --no-write
step speed_b4096 90 python -m benchmarks.speed --device cuda --batch-size 4096 --ks 8 --no-write
mnist=--no-mnist
[ -f ../shared/data/mnist/mnist_uint8.npz ] && mnist=""
step time_to_fit 180 python -m benchmarks.time_to_fit --device cuda $mnist --no-write
