"""Static checks of the rule files: what a rule's command writes is declared as its output.

Snakemake deletes a job's declared outputs before it reruns the job; a file the command
writes but the rule does not declare survives, and the ddpd commands refuse to overwrite
existing outputs, so such a rule fails on every rerun (found: real_video_diffusion's PDF).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "workflow" / "rules"


def _rule_blocks() -> list[tuple[str, str]]:
    blocks = []
    for smk in sorted(RULES.glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", smk.read_text(), flags=re.M)
        blocks += list(zip(parts[1::2], parts[2::2], strict=True))
    return blocks


FIGURE_RULES = [(name, body) for name, body in _rule_blocks()
                if re.search(r"--(out-prefix|figure) \{params\.prefix\}", body)]


def test_figure_rules_were_found():
    assert len(FIGURE_RULES) >= 6


@pytest.mark.parametrize("name, body", FIGURE_RULES, ids=[n for n, _ in FIGURE_RULES])
def test_figure_rules_declare_png_and_pdf(name, body):
    """ddpd.plots._save.save_figure writes <prefix>.png and <prefix>.pdf."""
    output = body.split("output:", 1)[1].split("\n    log:", 1)[0]
    assert re.search(r'"[^"]+\.png"', output), f"rule {name}: no .png output"
    assert re.search(r'"[^"]+\.pdf"', output), f"rule {name}: the .pdf it writes is not an output"
