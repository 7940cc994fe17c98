"""The statistics overlay draws the truth, the error floor (grey dashed) and the models."""

import numpy as np
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
