"""The statistics overlay draws the truth, the error floor (grey dashed) and the models."""

import json

import numpy as np
import pytest
from test_plots import PARAMS, sheared_trajectory

import ddpd.plots.statistics as overlay
from ddpd.io.h5md import write_trajectory
from ddpd.stats.compute import compute_statistics


def test_floor_is_a_dashed_grey_line_on_every_panel(tmp_path, monkeypatch):
    files = {}
    for label, seed in [("truth", 0), ("floor", 1), ("model", 2)]:
        write_trajectory(tmp_path / f"{label}.h5", sheared_trajectory(seed))
        files[label] = tmp_path / f"{label}.json"
        compute_statistics(tmp_path / f"{label}.h5", PARAMS, files[label])
    figures = []
    real_save = overlay.save_figure

    def keep(fig, prefix):
        figures.append(fig)
        return real_save(fig, prefix)

    monkeypatch.setattr(overlay, "save_figure", keep)
    paths = overlay.plot_statistics_overlay(files, tmp_path / "overlay")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    panels = [ax for ax in figures[0].axes if ax.get_visible()]
    assert len(panels) >= 5
    for ax in panels:
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"truth", "floor", "model"}
        assert lines["floor"].get_linestyle() == "--"
        assert lines["truth"].get_linestyle() == "-" and lines["model"].get_linestyle() == "-"
        assert lines["floor"].get_color() != lines["model"].get_color()
        assert np.isfinite(lines["floor"].get_ydata()).any()


def test_a_model_far_off_scale_is_clipped_and_marked(tmp_path, monkeypatch):
    """A model whose VACF is 30x the truth's (a rollout that heated) would flatten the panel;
    the axis keeps the truth's range (widened) and the legend says "(off scale)"."""
    files = {}
    for label, seed in [("truth", 0), ("floor", 1), ("hot", 2)]:
        write_trajectory(tmp_path / f"{label}.h5", sheared_trajectory(seed))
        files[label] = tmp_path / f"{label}.json"
        compute_statistics(tmp_path / f"{label}.h5", PARAMS, files[label])
    hot = json.loads(files["hot"].read_text())
    hot["statistics"]["vacf"]["y"] = [30 * y for y in hot["statistics"]["vacf"]["y"]]
    files["hot"].write_text(json.dumps(hot))
    figures = []
    real_save = overlay.save_figure
    monkeypatch.setattr(overlay, "save_figure",
                        lambda fig, prefix: figures.append(fig) or real_save(fig, prefix))
    overlay.plot_statistics_overlay(files, tmp_path / "overlay")
    vacf = next(ax for ax in figures[0].axes if ax.get_title() == "velocity autocorrelation")
    labels = {line.get_label() for line in vacf.get_lines()}
    assert labels == {"truth", "floor", "hot (off scale)"}
    truth = np.concatenate([line.get_ydata() for line in vacf.get_lines()
                            if line.get_label() in ("truth", "floor")])
    lo, hi = vacf.get_ylim()
    span = truth.max() - truth.min()
    assert hi == pytest.approx(truth.max() + span) and lo == pytest.approx(truth.min() - span)
    # the panels whose curves stay in range keep matplotlib's limits and plain labels
    rdf = next(ax for ax in figures[0].axes if ax.get_title() == "radial distribution function")
    assert {line.get_label() for line in rdf.get_lines()} == {"truth", "floor", "hot"}
