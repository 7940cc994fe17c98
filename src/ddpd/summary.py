"""The study's headline summary: one markdown page from the per-dataset tables.

Inputs are the error tables written by ``ddpd compare`` (CSV), the tracking
quality of the rendered twin (JSON) and the real-video diffusion analysis
(JSON). Nothing is computed here beyond collecting those numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ddpd.io import atomic_path


def _scalars(record: dict, prefix: str = "") -> dict[str, float | str]:
    """Flatten a JSON record to its scalar (number or string) leaves."""
    out: dict[str, float | str] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_scalars(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
    return out


def _dataset_name(path: Path) -> str:
    return path.name.removesuffix(".csv").removesuffix("_errors")


def write_summary(
    errors: list[Path], quality: list[Path], diffusion: list[Path], out: Path
) -> None:
    """Write ``out`` (markdown): error tables per dataset, tracking quality, diffusion."""
    parts = ["# ddpd study summary", ""]
    if errors:
        parts += ["## Held-out errors (relative RMS error, shared/method.md §5)", ""]
        for path in errors:
            table = pd.read_csv(path)
            parts += [f"### {_dataset_name(Path(path))}", "", table.to_markdown(index=False), ""]
    for title, files in (
        ("Tracking quality of the rendered colloid video", quality),
        ("Real video (bulk_water): diffusion", diffusion),
    ):
        if not files:
            continue
        parts += [f"## {title}", ""]
        for path in files:
            record = _scalars(json.loads(Path(path).read_text()))
            frame = pd.DataFrame({"quantity": list(record), "value": list(record.values())})
            parts += [f"`{path}`", "", frame.to_markdown(index=False), ""]
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(parts))
