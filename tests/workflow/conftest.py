"""Fixtures of the workflow tests: the smoke study, run once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_runner import ROOT, SMOKE, describe, snakemake


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """The whole smoke DAG, run once locally; returns its working directory."""
    workdir = tmp_path_factory.mktemp("smoke")
    result = snakemake(
        workdir,
        "--configfile",
        str(SMOKE),
        "--workflow-profile",
        str(ROOT / "workflow" / "profiles" / "workstation"),
        "--cores",
        "2",
    )
    assert result.returncode == 0, describe(result)
    return workdir
