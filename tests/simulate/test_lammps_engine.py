"""LAMMPS loading, error translation and gathering (ddpd.simulate.engine)."""

import numpy as np
import pytest

from ddpd.simulate import engine


def test_instance_logs_and_errors_name_the_log(tmp_path):
    log = tmp_path / "sub" / "log.lammps"
    lmp = engine.create_lammps(log)
    try:
        engine.commands(lmp, ["units lj", "atom_style atomic", "atom_modify map array",
                              "region b block 0 4 0 5 0 6", "create_box 1 b",
                              "create_atoms 1 random 7 12345 NULL", "mass 1 1.0"])
        with pytest.raises(engine.LammpsError) as info:
            engine.command(lmp, "pair_style no_such_style")
        assert str(log) in str(info.value)
        assert "no_such_style" in str(info.value)
        lo, edges, tilt = engine.box_geometry(lmp)
        np.testing.assert_allclose(edges, [4.0, 5.0, 6.0])
        assert tilt == 0.0
        x = engine.gather(lmp, "x", 3)
        assert x.shape == (7, 3)
        assert np.all((x >= lo) & (x < lo + edges))
        ids = engine.gather(lmp, "id", 1, integer=True)
        np.testing.assert_array_equal(ids[:, 0], np.arange(1, 8))  # ordered by atom id
        assert engine.lammps_version(lmp) > 20200000
    finally:
        engine.close(lmp)
    assert log.is_file() and "pair_style no_such_style" in log.read_text()
