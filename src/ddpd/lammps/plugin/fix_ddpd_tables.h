/* fix ddpd/tables: the learned metriplectic model of ddpd (shared/method.md) as a LAMMPS fix.

   One LAMMPS step == one ddpd.lammps.external.euler_update (method.md §3):
     initial_integrate:  x_{n+1} = x_n + v_{n+1} dt   (v set by the previous post_force)
     post_force:         (v_n, S_n) at x_n -> (v_{n+1}, S_{n+1}), explicit or midpoint friction,
                         entropy update exact (default: U(S', V) = U + heat, friction and
                         noise conserve the energy) or linear (S' = S + heat / T); with
                         project yes (default) the peculiar velocities v_n are first
                         rescaled so that K + sum U equals the energy at the run's start
   The update is also done in setup() of a run, once per timestep.

   Syntax:
     fix ID all ddpd/tables TABLES seed SEED [entropy NAME] [friction explicit|midpoint]
                                              [heat exact|linear] [project yes|no]
                                              [noise yes|no] [record N] [cg_tol X]
                                              [cg_iter N]
   TABLES: binary file written by ddpd.lammps.plugin.write_plugin_tables.
   The entropy S is the custom per-atom double NAME (default "entropy") of
   "fix property/atom d_NAME ghost yes"; the neighbour list is LAMMPS's half list, whose
   cutoff comes from "pair_style zero h"; ghosts need "comm_modify vel yes".
*/

#ifndef LMP_FIX_DDPD_TABLES_H
#define LMP_FIX_DDPD_TABLES_H

#include "fix.h"

#include <cstdint>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class FixDdpdTables : public Fix {
 public:
  FixDdpdTables(class LAMMPS *, int, char **);
  ~FixDdpdTables() override;
  int setmask() override;
  void init() override;
  void init_list(int, class NeighList *) override;
  void setup(int) override;
  void initial_integrate(int) override;
  void post_force(int) override;
  double compute_vector(int) override;

  void grow_arrays(int) override;
  void copy_arrays(int, int, int) override;
  int pack_exchange(int, double *) override;
  int unpack_exchange(int, double *) override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  double memory_usage() override;

 private:
  // tables (ddpd.lammps.export: kernel w, dw/dr of s; U, T, P, dT/dS of (S, V);
  // a, b, c and their T-slopes of (s, T))
  std::string table_file;
  int dim;
  double cutoff, mass, k_B, w_self;
  double S_lo, S_hi, V_lo, V_hi, T_lo, T_hi;
  double core_scale, core_radius;    // pair core prior psi = core_scale (1 - r/r0)^2
  int n_kernel, n_S, n_V, n_s, n_T;
  std::vector<double> kernel_table, thermo_table, friction_table;
  void read_tables();

  // settings
  uint64_t seed;
  std::string entropy_name;
  int midpoint, heat_exact, project_flag, noise_flag, record_every, cg_max_iter;
  double cg_tol;

  class NeighList *list;
  int entropy_index;
  bigint last_step;
  double out_of_range_local;
  bool target_set;
  double energy_target;    // total energy of the projection (set at the first step of a run)
  int cg_iterations;

  // per-atom scratch (local + ghost), resized every step
  int nmax_scratch;
  std::vector<double> state;     // [S, d] per atom (forward comm)
  std::vector<double> thermo;    // [U, T, P, dT/dS] per atom
  std::vector<double> acc;       // reverse-comm accumulators (ACC_* layout)
  std::vector<double> cg_vec;    // D per atom: CG direction or solution (forward comm)
  std::vector<double> cg_out;    // D per atom: L x (reverse comm)
  std::vector<double> heat_acc;  // 2 per atom: entropy change or heat, sum |dv_p|^2 (reverse)
  std::vector<double> core_energy;    // per atom: half its pairs' core psi (reverse)
  std::vector<double> vel_change;    // D per owned atom: v_{n+1} - v_n

  // per-pair storage for the midpoint solve and the entropy update
  std::vector<int> pair_i, pair_j;
  std::vector<double> pair_e, pair_a2, pair_b2, pair_kappa;
  std::vector<double> pair_kick;      // dim per pair: noise velocity increment of i
  std::vector<double> pair_rate_v;    // dim per pair: velocity rate of i (M dS + k_B div M)
  std::vector<double> pair_heat_i, pair_heat_j;    // proposed heats T dS of i and j

  // communication: which array and how many values per atom
  double *comm_array;
  int comm_stride, comm_count;
  void forward(double *array, int stride, int count);
  void reverse(double *array, int stride, int count);

  // output: (v_n (3), S_n, U_n) at record steps
  double **record;

  void euler_step(bigint step);
  void project_energy(int nlocal, int nall);
  void midpoint_solve(int nlocal, std::vector<double> &y);
  void entropy_update(int nlocal);
  void apply_friction(const double *x, double *out, int nall);
  double dot_local(const double *a, const double *b, int nlocal);

  double interp1(const std::vector<double> &table, int n, int ncol, int col, double x);
  double core_psi(double r) const;
  double core_slope(double r) const;
  void lookup_thermo(double S, double V, double *out, bool count);
  double entropy_at(double U, double V, bool count);
  void lookup_amplitudes(double s, double T, double *out, bool count);
};

}    // namespace LAMMPS_NS

#endif
