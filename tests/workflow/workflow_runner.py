"""Run the Snakemake DAG on the repository's Snakefile in a given working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "tests" / "configs" / "smoke.yaml"
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: float = 900):
    """Run snakemake on the repository's Snakefile with ``workdir`` as working directory."""
    env = dict(env or os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"  # the `ddpd` console script of this venv
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "passive")
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def describe(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-3000:]}"
    )
