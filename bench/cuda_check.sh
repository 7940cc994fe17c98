#!/usr/bin/env bash
# The checks that need a CUDA device, as one script: the CUDA tests (model, training,
# rollouts; skipped on machines without CUDA) and the model benchmark on the GPU.
#
#     bash bench/cuda_check.sh LOG_DIR
#
# Runs with the python3 on PATH (the machine's own torch; ddpd from src/). Writes
# LOG_DIR/cuda_tests.log and LOG_DIR/cuda_bench.log; results are recorded by hand in
# bench/model.md.
set -uo pipefail
out=${1:?usage: bash bench/cuda_check.sh LOG_DIR}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 - <<'EOF' 2>&1 | tee "$out/cuda_bench.log"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
EOF
timeout 180 python3 -m pytest -p no:cacheprovider -q -k cuda \
    tests/model/test_cuda.py tests/test_train.py tests/test_rollout.py 2>&1 \
    | tee "$out/cuda_tests.log" | grep -v "it/s\]" | tail -30
echo "tests exit ${PIPESTATUS[0]}"
timeout 100 python3 bench/bench_model.py --device cuda --threads 2 --n 1000 10000 100000 \
    --repeats 10 2>&1 | tee -a "$out/cuda_bench.log"
timeout 200 python3 bench/bench_model.py --device cuda --threads 2 --n 10000 100000 \
    --repeats 10 --compile 2>&1 | tee -a "$out/cuda_bench.log"
