"""ddpd.stats: statistics of trajectories and their comparison (shared/method.md §5).

Modules, one job each: ``rdf`` (g(r)), ``displacement`` (MSD, alpha_2, self van Hove),
``vacf`` (velocity autocorrelation), ``shear`` (velocity profile, kinetic shear stress),
``compute`` (all of them for one trajectory file -> JSON), ``compare`` (relative RMS error
tables), ``diffusion`` (tracked-video diffusion report). Import the modules directly; this
package does not import them, so that ``import ddpd.stats.diffusion`` does not need freud.
"""
