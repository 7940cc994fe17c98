"""The smoke DAG through a real one-node SLURM cluster and the slurm workflow profile.

Every rule of the DAG runs, but only the metriplectic model is learned: the baselines go
through the same train_model/rollout_model/statistics_model rules (tests/workflow/
test_smoke.py runs them all locally), and each job costs a queue cycle here (57 jobs instead
of 77).

Needs root (it installs slurm-wlm/munge when missing and starts the daemons, then
stops them by PID). CI runs as root; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os

import pytest
from slurm_cluster import SlurmUnavailable, start_cluster
from workflow_runner import ROOT, SMOKE, describe, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# the Snakefile's localrules, and `all` (no action): the rules that are not submitted
NOT_SUBMITTED = {"compare", "plot_statistics", "plot_learning_curve", "plot_conservation",
                 "summary", "all"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM cluster needs root")
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except SlurmUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield cluster
    cluster.stop()


def test_smoke_dag_through_slurm_profile(cluster, tmp_path):
    # our model and one rollout seed (the baselines and the second seed run the same rules
    # in the local smoke test)
    one_model = tmp_path / "one_model.yaml"
    one_model.write_text("learn:\n  models: [metriplectic]\nrollout_seeds: [0]\n")
    rules = snakemake(tmp_path, "--list-rules", "--configfile", str(SMOKE))
    assert rules.returncode == 0, describe(rules)
    submitted = set(rules.stdout.split()) - NOT_SUBMITTED
    result = snakemake(
        tmp_path,
        "--configfile",
        str(SMOKE),
        str(one_model),
        "--workflow-profile",
        str(ROOT / "workflow" / "profiles" / "slurm"),
        "--jobs",
        "4",
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        "--latency-wait",
        "5",
        env=cluster.env,
        timeout=1500,
    )
    assert result.returncode == 0, describe(result)
    assert (tmp_path / "results" / "tables" / "summary.md").is_file()
    # every rule but the localrules (tables, figures: run in the submitting process) went
    # through sbatch: one SLURM log folder per rule
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs"
    ran = {p.name for p in slurm_logs.iterdir()}
    assert ran == {f"rule_{name}" for name in submitted}
    # the training job was given the (fake) GPU by SLURM through the `gpu` resource
    train_logs = list((tmp_path / "results" / "logs" / "train").glob("*_metriplectic.log"))
    assert train_logs and all("CUDA_VISIBLE_DEVICES=0" in p.read_text() for p in train_logs)
