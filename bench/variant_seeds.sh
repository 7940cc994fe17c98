#!/bin/bash
# Retrain the metriplectic model of one dataset of a finished study with one change, roll it
# out with noise seeds 0-3 and score it against that study's truth and floor.
#
#   bench/variant_seeds.sh STUDY_DIR DATASET OUT_DIR [EXTRA_TRAIN_JSON [EXTRA_ROLLOUT_JSON]]
#   e.g. bench/variant_seeds.sh /work/study_head stars-melt-rest /tmp/v3 '{"seed": 1}'
#
# EXTRA_TRAIN_JSON "model:DIR" scores the trained model folder DIR (e.g. from
# bench/scale_model.py) instead of training one.
#
# Training parameters: the study model's own (train_params of its hparams.json), updated by
# EXTRA_TRAIN_JSON; rollouts (the study's config.yaml rollout section with "seed": S, updated
# by EXTRA_ROLLOUT_JSON), statistics and compare with the study's parameters. Uses the
# ddpd of this checkout (PYTHONPATH=src), so a patched checkout (bench/patches/) runs its
# experiment; environment variables pass through. Prints the label check and the error table
# (mean and range over the seeds). Recorded in bench/model.md.
set -euo pipefail
study=$(realpath "$1"); ds=$2; out=$(realpath -m "$3"); extra=${4:-"{}"}
extra_rollout=${5:-"{}"}
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$repo/.venv/bin:$PATH" PYTHONPATH="$repo/src" OMP_WAIT_POLICY=passive
if [ -e "$out" ]; then echo "variant_seeds.sh: $out exists; choose a new OUT_DIR" >&2; exit 2; fi
hparams="$study/results/models/$ds/metriplectic/hparams.json"
if [ ! -f "$hparams" ]; then
    echo "variant_seeds.sh: $hparams not found (STUDY_DIR must hold a finished study with" \
         "dataset $ds)" >&2
    exit 2
fi
mkdir -p "$out"
failed() {
    local log
    log=$(ls -t "$out"/*.log 2>/dev/null | head -1)
    if [ -n "$log" ]; then tail -n 5 "$log" >&2; fi
    echo "variant_seeds.sh: failed (last log above); removing $out" >&2
    rm -rf "$out"
}
trap failed ERR
cd "$study"
if [[ "$extra" == model:* ]]; then
    cp -r "${extra#model:}" "$out/model"
else
python - "$hparams" "$extra" > "$out/params.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["train_params"]
p.update(json.loads(sys.argv[2]))
print(json.dumps(p))
PY
ddpd train --params @"$out/params.json" --dataset "results/datasets/$ds.h5" \
    --out-dir "$out/model" --threads 2 > "$out/train.log" 2>&1
fi
python - "$out/model/hparams.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
e = h.get("entropy_labels", {})
print("best epoch", h["best_epoch"], h["stop_reason"], " ".join(
    f"{k} {e[k]:.4g}" for k in ("spread", "fluctuation", "increment", "lag1", "einstein_spread",
                                "stationary_spread", "entropy_noise", "noise_ratio") if k in e))
PY
# the study's own statistics and rollout sections (config.yaml), as its rules pass them
stats=$(python -c 'import json, yaml; print(json.dumps(yaml.safe_load(open("config.yaml"))["statistics"]))')
models=()
for seed in 0 1 2 3; do
    rollout_params=$(python -c 'import json, sys, yaml
p = {**yaml.safe_load(open("config.yaml"))["rollout"], "seed": int(sys.argv[1])}
p.update(json.loads(sys.argv[2])); print(json.dumps(p))' "$seed" "$extra_rollout")
    ddpd rollout --params "$rollout_params" --model-dir "$out/model" \
        --dataset "results/datasets/$ds.h5" --out "$out/seed$seed.h5" --threads 2 \
        > "$out/rollout$seed.log" 2>&1
    ddpd statistics --params "$stats" --trajectory "$out/seed$seed.h5" \
        --out "$out/seed$seed.json" > "$out/stats$seed.log" 2>&1
    models+=("variant=$out/seed$seed.json")
done
ddpd compare --truth "results/stats/$ds/truth.json" --model "${models[@]}" \
    --floor "results/stats/$ds/floor.json" --out-csv "$out/errors.csv" \
    --out-md "$out/errors.md" > "$out/compare.log" 2>&1
cat "$out/errors.md"
