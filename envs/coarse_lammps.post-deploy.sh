#!/usr/bin/env bash
# Snakemake runs this once after creating the env: install the ddpd package (no deps:
# the env file pins them) from the working directory, the repository root.
set -euo pipefail
python -m pip install --no-deps --no-build-isolation "${DDPD_ROOT:-$PWD}"
