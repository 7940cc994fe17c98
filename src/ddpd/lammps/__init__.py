"""The learned model inside LAMMPS: tabulated functions and a fix-external driver.

* :mod:`ddpd.lammps.export`: tables of w, U(S, V), a, b, c (s, T) and a numpy evaluator.
* :mod:`ddpd.lammps.external`: ``fix external`` callback (one LAMMPS step = one Euler step).
"""
