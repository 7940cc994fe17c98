import csv
import json
import math

import numpy as np
import pytest

from ddpd.stats.compare import compare_statistics, relative_rms_error


def write_stats(path, series, scalars=None):
    data = {"statistics": {name: {"x": list(map(float, x)),
                                  "y": [None if np.isnan(v) else float(v) for v in y],
                                  "x_label": "x", "y_label": "y"}
                           for name, (x, y) in series.items()},
            "scalars": scalars or {}}
    path.write_text(json.dumps(data))
    return path


def test_relative_rms_error_known_values():
    y = np.array([3.0, 4.0])
    assert relative_rms_error(y * 1.1, y) == pytest.approx(0.1)
    assert relative_rms_error(np.array([3.0, 0.0]), y) == pytest.approx(4.0 / 5.0)
    assert relative_rms_error(np.array([3.0, np.nan]), y) == pytest.approx(0.0)  # 4 excluded
    assert math.isnan(relative_rms_error(np.zeros(2), np.zeros(2)))
    with pytest.raises(ValueError, match="shapes"):
        relative_rms_error(np.zeros(3), y)


def test_compare_statistics_tables(tmp_path):
    x = np.linspace(0, 1, 11)
    truth = write_stats(tmp_path / "truth.json",
                        {"msd": (x, 1 + x), "rdf": (x, np.ones(11))},
                        {"measured_shear_rate": 0.01})
    good = write_stats(tmp_path / "good.json", {"msd": (x, 1.1 * (1 + x)),
                                                "rdf": (x, np.ones(11))},
                       {"measured_shear_rate": 0.012})
    # shorter grid (interpolated on the overlap) and a missing statistic
    x_short = np.linspace(0, 0.5, 6)
    short = write_stats(tmp_path / "short.json", {"msd": (x_short, 1 + x_short)})
    table = compare_statistics(truth, {"good": good, "short": short},
                               tmp_path / "t.csv", tmp_path / "t.md")
    assert table["good"]["msd"] == pytest.approx(0.1)
    assert table["good"]["rdf"] == 0.0
    assert table["good"]["measured_shear_rate"] == pytest.approx(0.2)
    assert table["short"]["msd"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(table["short"]["rdf"])
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == 6 and rows[0]["model"] == "good"
    md = (tmp_path / "t.md").read_text()
    assert "| msd | 0.1 | 0 |" in md and "n/a" in md


def test_compare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        compare_statistics(tmp_path / "missing.json", {"m": tmp_path / "missing.json"},
                           tmp_path / "a.csv", tmp_path / "a.md")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        compare_statistics(tmp_path / "bad.json", {"m": tmp_path / "bad.json"},
                           tmp_path / "a.csv", tmp_path / "a.md")
    assert not (tmp_path / "a.csv").exists()
