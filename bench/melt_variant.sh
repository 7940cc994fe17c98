#!/bin/bash
# Train, roll out and score one variant of the metriplectic model on the star melt at rest,
# against the finished default study's truth, floor and Langevin statistics.
#
#   bench/melt_variant.sh STUDY_DIR OUT_DIR MODEL_JSON [EXTRA_TRAIN_JSON]
#   e.g. bench/melt_variant.sh /work/study /tmp/mono '{"depth": 2, "width": 32}' \
#            ', "equipartition": 100.0, "seed": 2'
#
# The training parameters are the default study's learn.train section (config.yaml) with
# "model" replaced by MODEL_JSON and EXTRA_TRAIN_JSON appended (a later key wins). One
# thread per step; prints the error table (ddpd compare). Recorded in bench/model.md.
set -euo pipefail
study=$(realpath "$1"); out=$(realpath -m "$2"); model=$3; extra=${4:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$repo/.venv/bin:$PATH" PYTHONPATH="$repo/src" OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
mkdir -p "$out"
cd "$study"
data=results/datasets/stars-melt-rest.h5
stats=results/stats/stars-melt-rest
ddpd train --params "{\"epochs\": 40, \"equipartition\": 10.0, \"frames_per_epoch\": 128, \
\"kind\": \"metriplectic\", \"max_wall_minutes\": 3, \"model\": $model, \"patience\": 8, \
\"validation_frames\": 100, \"warmup_epochs\": 3$extra}" --dataset $data \
    --out-dir "$out/model" --device cpu --threads 1 > "$out/train.log" 2>&1
ddpd rollout --params '{"save_every": 1}' --model-dir "$out/model" --dataset $data \
    --out "$out/rollout.h5" --threads 1 > "$out/rollout.log" 2>&1
ddpd statistics --params '{"max_lag": 250, "n_alpha2_lags": 20, "n_bins": 100, "profile_bins": 10, "rdf_stride": 5, "van_hove_bins": 60, "van_hove_lags": [1, 10, 100]}' \
    --trajectory "$out/rollout.h5" --out "$out/stats.json" > "$out/stats.log" 2>&1
ddpd compare --truth $stats/truth.json --model variant="$out/stats.json" \
    langevin=$stats/langevin.json --floor $stats/floor.json --out-csv "$out/errors.csv" \
    --out-md "$out/errors.md" > "$out/compare.log" 2>&1
cat "$out/errors.md"
