"""Fine-grained simulations with LAMMPS.

Modules: ``engine`` (loading LAMMPS, instances, errors naming the log), ``stars``
(Kremer-Grest star polymers coarse-grained to star centres of mass), ``colloid`` (2D
driven bidisperse suspension, the truth behind synthetic videos). Importing this package
does not import LAMMPS.
"""
