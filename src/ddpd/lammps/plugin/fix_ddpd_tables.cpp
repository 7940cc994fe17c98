/* fix ddpd/tables: see fix_ddpd_tables.h and shared/method.md §2-3.

   C++ twin of ddpd.lammps.export.table_rates (deterministic rate, closed forms of
   ddpd.model.bracket), ddpd.lammps.external.noise_kick / pair_normals (counter-based pair
   noise, Philox-4x64-10) and ddpd.lammps.external.euler_update (midpoint_velocity_change,
   pair_increments, exact_heat_entropy), on LAMMPS's domain decomposition:
     1. density d_i = w(0) + sum_j w(r_ij) and the pair core prior's energy per atom: half
        list, reverse comm (newton on);
     2. forward comm of (S, d) to ghosts; U, T, P, dT/dS of every owned and ghost atom;
        project yes: peculiar velocities rescaled to the run's total energy (two
        MPI_Allreduce; ghosts get the same map);
     3. pair loop: force (with the core prior's), friction drift M dS, k_B div M, pair
        noise; reverse comm;
     4. velocity change y: explicit y = rate_v dt + dv_noise; midpoint: CG solve of
        (I + dt L/2) y = rate_v dt + dv_noise (forward comm of the direction and reverse
        comm of L x per iteration, MPI_Allreduce of dot products);
     5. entropies (forward comm of y, one pass over the stored pairs, reverse comm): the
        pair heats (midpoint: entropy rows re-evaluated at u_mid = u + (y_i - y_j)/2, no
        kinetic Ito term in k_B div M); heat linear: S' = S + heat / T; heat exact: each
        pair's heats corrected to minus its kinetic-energy change, the cross terms between
        pairs subtracted, and S' from U(S', V) = U + heat (exact inverse of the bilinear
        U table in S); v' = v + y.
   With newton off a pair across a sub-domain boundary is stored on both ranks; each adds
   only to its own atom, and both draw the same noise numbers (the counter is the pair's
   IDs and the step). Units: those of the tables (LJ units of the training data).
*/

#include "fix_ddpd_tables.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mpi.h>

using namespace LAMMPS_NS;
using namespace FixConst;

namespace {

const char TABLE_MAGIC[8] = {'D', 'D', 'P', 'D', 'T', 'B', '0', '2'};
const int N_HEADER_INTS = 8;
const int N_HEADER_DOUBLES = 12;

// layout of the reverse-communicated accumulators per atom
const int ACC_F = 0;     // conservative force F (3)
const int ACC_PV = 3;    // friction drift + k_B div M, velocity rows (3)
const int ACC_KV = 6;    // noise dv (3)
const int ACC_RS = 9;    // entropy rate (1)
const int ACC_KS = 10;   // noise dS (1)
const int ACC_SIZE = 11;
const int RECORD_SIZE = 5;    // v_n (3), S_n, U_n

// Philox-4x64-10 (Salmon et al., SC'11), as ddpd.lammps.external.philox4x64
const uint64_t PHILOX_M0 = 0xD2E7470EE14C6C93ULL, PHILOX_M1 = 0xCA5A826395121157ULL;
const uint64_t PHILOX_W0 = 0x9E3779B97F4A7C15ULL, PHILOX_W1 = 0xBB67AE8584CAA73BULL;
const uint64_t DDPD_KEY1 = 0x64647064ULL;    // 'ddpd'

inline void mulhilo64(uint64_t a, uint64_t b, uint64_t &hi, uint64_t &lo)
{
  const unsigned __int128 product = (unsigned __int128) a * b;
  hi = (uint64_t) (product >> 64);
  lo = (uint64_t) product;
}

void philox4x64(uint64_t c[4], uint64_t k0, uint64_t k1)
{
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t hi0, lo0, hi1, lo1;
    mulhilo64(PHILOX_M0, c[0], hi0, lo0);
    mulhilo64(PHILOX_M1, c[2], hi1, lo1);
    const uint64_t c1 = c[1], c3 = c[3];
    c[0] = hi1 ^ c1 ^ k0;
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k1;
    c[3] = lo0;
  }
}

// `count` standard normals of the unordered pair (id_a, id_b) at `step`: counter
// (min ID, max ID, step, block), key (seed, 'ddpd'), Box-Muller on 53-bit uniforms in (0, 1]
// (ddpd.lammps.external.pair_normals)
void pair_normals(uint64_t step, uint64_t id_a, uint64_t id_b, uint64_t seed, int count,
                  double *out)
{
  const uint64_t lo = id_a < id_b ? id_a : id_b;
  const uint64_t hi = id_a < id_b ? id_b : id_a;
  const int n_blocks = (count + 3) / 4;
  double block_out[4];
  for (int b = 0; b < n_blocks; ++b) {
    uint64_t c[4] = {lo, hi, step, (uint64_t) b};
    philox4x64(c, seed, DDPD_KEY1);
    double uniform[4];
    for (int k = 0; k < 4; ++k) uniform[k] = ((double) (c[k] >> 11) + 1.0) * 0x1p-53;
    const double radius0 = std::sqrt(-2.0 * std::log(uniform[0]));
    const double radius1 = std::sqrt(-2.0 * std::log(uniform[2]));
    const double angle0 = 2.0 * M_PI * uniform[1];
    const double angle1 = 2.0 * M_PI * uniform[3];
    block_out[0] = radius0 * std::cos(angle0);
    block_out[1] = radius1 * std::cos(angle1);
    block_out[2] = radius0 * std::sin(angle0);
    block_out[3] = radius1 * std::sin(angle1);
    for (int k = 0; k < 4 && 4 * b + k < count; ++k) out[4 * b + k] = block_out[k];
  }
}

// cell index and fraction on a uniform grid of n points on [lo, hi], clamped
// (ddpd.lammps.export._cell); returns 1 if x was outside
inline int grid_cell(double x, double lo, double hi, int n, int &k, double &t)
{
  double u = (x - lo) / (hi - lo) * (n - 1);
  int outside = (u < 0.0 || u > n - 1) ? 1 : 0;
  if (u < 0.0) u = 0.0;
  if (u > n - 1) u = n - 1;
  k = (int) u;
  if (k > n - 2) k = n - 2;
  t = u - k;
  return outside;
}

// K x for K = (a2/2) I + (a2/2 + (b2 - a2)/D) e e^T, ex = e.x (method.md §2)
inline void k_dot(double a2, double b2, const double *x, double ex, const double *e, int dim,
                  double *out)
{
  const double along = (0.5 * a2 + (b2 - a2) / dim) * ex;
  for (int a = 0; a < dim; ++a) out[a] = 0.5 * a2 * x[a] + along * e[a];
}

inline double dot(const double *a, const double *b, int dim)
{
  double sum = 0.0;
  for (int k = 0; k < dim; ++k) sum += a[k] * b[k];
  return sum;
}

}    // namespace

/* ---------------------------------------------------------------------- */

FixDdpdTables::FixDdpdTables(LAMMPS *lmp, int narg, char **arg) :
    Fix(lmp, narg, arg), list(nullptr), comm_array(nullptr), record(nullptr)
{
  if (narg < 6) error->all(FLERR, "Illegal fix ddpd/tables command: expected "
                                  "'fix ID all ddpd/tables TABLES seed SEED [keywords]'");
  if (igroup != 0) error->all(FLERR, "fix ddpd/tables must act on group all");
  table_file = arg[3];
  if (strcmp(arg[4], "seed") != 0)
    error->all(FLERR, "fix ddpd/tables: expected 'seed SEED' after the tables file, got {}",
               arg[4]);
  {
    char *end = nullptr;
    const long long value = strtoll(arg[5], &end, 10);
    if (end == arg[5] || *end != '\0' || value < 0)
      error->all(FLERR, "fix ddpd/tables: seed must be an integer >= 0, got {}", arg[5]);
    seed = (uint64_t) value;
  }
  entropy_name = "entropy";
  midpoint = -1;    // from the tables file unless set
  heat_exact = 1;
  project_flag = 1;
  noise_flag = 1;
  record_every = 0;
  cg_tol = 1e-12;
  cg_max_iter = 200;
  for (int iarg = 6; iarg < narg; iarg += 2) {
    if (iarg + 1 >= narg)
      error->all(FLERR, "fix ddpd/tables: keyword {} needs a value", arg[iarg]);
    const std::string key = arg[iarg], value = arg[iarg + 1];
    if (key == "entropy") {
      entropy_name = value;
    } else if (key == "friction") {
      if (value == "explicit") midpoint = 0;
      else if (value == "midpoint") midpoint = 1;
      else error->all(FLERR, "fix ddpd/tables: friction must be explicit or midpoint, got {}",
                      value);
    } else if (key == "heat") {
      if (value == "exact") heat_exact = 1;
      else if (value == "linear") heat_exact = 0;
      else error->all(FLERR, "fix ddpd/tables: heat must be exact or linear, got {}", value);
    } else if (key == "project") {
      project_flag = utils::logical(FLERR, value, false, lmp);
    } else if (key == "noise") {
      noise_flag = utils::logical(FLERR, value, false, lmp);
    } else if (key == "record") {
      record_every = utils::inumeric(FLERR, value, false, lmp);
      if (record_every < 0) error->all(FLERR, "fix ddpd/tables: record must be >= 0");
    } else if (key == "cg_tol") {
      cg_tol = utils::numeric(FLERR, value, false, lmp);
      if (!(cg_tol > 0.0)) error->all(FLERR, "fix ddpd/tables: cg_tol must be > 0");
    } else if (key == "cg_iter") {
      cg_max_iter = utils::inumeric(FLERR, value, false, lmp);
      if (cg_max_iter < 1) error->all(FLERR, "fix ddpd/tables: cg_iter must be >= 1");
    } else {
      error->all(FLERR, "fix ddpd/tables: unknown keyword {}", key);
    }
  }

  read_tables();
  if (dim != domain->dimension)
    error->all(FLERR, "fix ddpd/tables: tables file {} is for a {}-D model but the simulation "
                      "is {}-D", table_file, dim, domain->dimension);

  time_integrate = 1;
  comm_forward = 3;
  comm_reverse = ACC_SIZE;
  vector_flag = 1;
  size_vector = 2;
  global_freq = 1;
  extvector = 0;
  peratom_flag = 1;
  size_peratom_cols = RECORD_SIZE;
  peratom_freq = record_every > 0 ? record_every : 1;

  entropy_index = -1;
  last_step = -1;
  out_of_range_local = 0.0;
  target_set = false;
  energy_target = 0.0;
  cg_iterations = 0;
  nmax_scratch = 0;

  grow_arrays(atom->nmax);
  atom->add_callback(Atom::GROW);
  for (int i = 0; i < atom->nlocal; ++i)
    for (int k = 0; k < RECORD_SIZE; ++k) record[i][k] = 0.0;
}

FixDdpdTables::~FixDdpdTables()
{
  atom->delete_callback(id, Atom::GROW);
  memory->destroy(record);
}

int FixDdpdTables::setmask()
{
  return INITIAL_INTEGRATE | POST_FORCE;
}

/* read the binary tables of ddpd.lammps.plugin.write_plugin_tables (little-endian):
   8 bytes magic, int64[8] (dim, n_kernel, n_S, n_V, n_s, n_T, midpoint, 0),
   float64[12] (cutoff, mass, k_B, w_self, S_lo, S_hi, V_lo, V_hi, T_lo, T_hi, core_scale,
   core_radius),
   float64 kernel (n_kernel, 2), thermo (n_S, n_V, 4), friction (n_s, n_T, 6), C order */
void FixDdpdTables::read_tables()
{
  FILE *fp = fopen(table_file.c_str(), "rb");
  if (!fp)
    error->all(FLERR, "fix ddpd/tables: cannot open tables file {}: {}", table_file,
               utils::getsyserror());
  char magic[8];
  int64_t ints[N_HEADER_INTS];
  double reals[N_HEADER_DOUBLES];
  bool ok = fread(magic, 1, 8, fp) == 8 && memcmp(magic, TABLE_MAGIC, 8) == 0;
  ok = ok && fread(ints, sizeof(int64_t), N_HEADER_INTS, fp) == (size_t) N_HEADER_INTS;
  ok = ok && fread(reals, sizeof(double), N_HEADER_DOUBLES, fp) == (size_t) N_HEADER_DOUBLES;
  if (!ok) {
    fclose(fp);
    error->all(FLERR, "fix ddpd/tables: {} is not a ddpd plugin tables file (bad header; "
                      "write it with ddpd.lammps.plugin.write_plugin_tables)", table_file);
  }
  dim = (int) ints[0];
  n_kernel = (int) ints[1];
  n_S = (int) ints[2];
  n_V = (int) ints[3];
  n_s = (int) ints[4];
  n_T = (int) ints[5];
  if (midpoint < 0) midpoint = ints[6] ? 1 : 0;
  cutoff = reals[0];
  mass = reals[1];
  k_B = reals[2];
  w_self = reals[3];
  S_lo = reals[4];
  S_hi = reals[5];
  V_lo = reals[6];
  V_hi = reals[7];
  T_lo = reals[8];
  T_hi = reals[9];
  core_scale = reals[10];
  core_radius = reals[11];
  if ((dim != 2 && dim != 3) || n_kernel < 2 || n_S < 2 || n_V < 2 || n_s < 2 || n_T < 2 ||
      !(cutoff > 0.0) || !(mass > 0.0) || !(k_B > 0.0) || !(S_hi > S_lo) || !(V_hi > V_lo) ||
      !(T_hi > T_lo) || !(core_scale >= 0.0) || !(core_radius >= 0.0)) {
    fclose(fp);
    error->all(FLERR, "fix ddpd/tables: {} has an invalid header (dimension {}, grid sizes "
                      "{} {} {} {} {})", table_file, dim, n_kernel, n_S, n_V, n_s, n_T);
  }
  kernel_table.resize((size_t) n_kernel * 2);
  thermo_table.resize((size_t) n_S * n_V * 4);
  friction_table.resize((size_t) n_s * n_T * 6);
  ok = fread(kernel_table.data(), sizeof(double), kernel_table.size(), fp) ==
      kernel_table.size();
  ok = ok && fread(thermo_table.data(), sizeof(double), thermo_table.size(), fp) ==
      thermo_table.size();
  ok = ok && fread(friction_table.data(), sizeof(double), friction_table.size(), fp) ==
      friction_table.size();
  char extra;
  const bool trailing = ok && fread(&extra, 1, 1, fp) == 1;
  fclose(fp);
  if (!ok || trailing)
    error->all(FLERR, "fix ddpd/tables: {} has the wrong size for its header (truncated or "
                      "corrupt)", table_file);
  // the exact entropy update inverts U(S, V) in S: U must increase along S (T > 0)
  for (int k = 0; k + 1 < n_S; ++k)
    for (int l = 0; l < n_V; ++l)
      if (!(thermo_table[((size_t) (k + 1) * n_V + l) * 4] >
            thermo_table[((size_t) k * n_V + l) * 4]))
        error->all(FLERR, "fix ddpd/tables: the U(S, V) table of {} is not strictly "
                          "increasing in S at S index {}, V index {} (T <= 0)", table_file, k,
                   l);
}

void FixDdpdTables::init()
{
  int flag, cols;
  entropy_index = atom->find_custom(entropy_name.c_str(), flag, cols);
  if (entropy_index < 0 || flag != 1 || cols != 0)
    error->all(FLERR, "fix ddpd/tables: needs the per-atom double d_{} (fix property/atom "
                      "d_{} ghost yes)", entropy_name, entropy_name);
  if (!force->pair || force->pair->cutforce < cutoff)
    error->all(FLERR, "fix ddpd/tables: needs a pair style whose cutoff is at least the model "
                      "cutoff h = {} of {} (e.g. pair_style zero {})", cutoff, table_file,
               cutoff);
  if (!comm->ghost_velocity)
    error->all(FLERR, "fix ddpd/tables: needs ghost velocities (comm_modify vel yes)");
  if (domain->triclinic) error->all(FLERR, "fix ddpd/tables: needs an orthogonal box");
  for (int a = 0; a < dim; ++a)
    if (domain->periodicity[a] && domain->prd[a] < 2.0 * cutoff)
      error->all(FLERR, "fix ddpd/tables: periodic box edge {} is shorter than twice the "
                        "cutoff h = {} of {}", domain->prd[a], cutoff, table_file);
  for (int t = 1; t <= atom->ntypes; ++t)
    if (atom->mass && std::fabs(atom->mass[t] - mass) > 1e-12 * mass)
      error->all(FLERR, "fix ddpd/tables: mass of atom type {} is {}, the model mass in {} is "
                        "{}", t, atom->mass[t], table_file, mass);
  neighbor->add_request(this);
}

void FixDdpdTables::init_list(int, NeighList *ptr)
{
  list = ptr;
}

void FixDdpdTables::setup(int)
{
  target_set = false;    // the projection keeps the energy of this run's first step
  if (update->ntimestep != last_step) euler_step(update->ntimestep);
}

void FixDdpdTables::initial_integrate(int)
{
  double **x = atom->x, **v = atom->v;
  const double dt = update->dt;
  for (int i = 0; i < atom->nlocal; ++i)
    for (int a = 0; a < dim; ++a) x[i][a] += dt * v[i][a];
}

void FixDdpdTables::post_force(int)
{
  if (update->ntimestep != last_step) euler_step(update->ntimestep);
}

/* ---------------------------------------------------------------------- */

double FixDdpdTables::interp1(const std::vector<double> &table, int n, int ncol, int col,
                              double x)
{
  int k;
  double t;
  grid_cell(x, 0.0, 1.0, n, k, t);
  return (1 - t) * table[(size_t) k * ncol + col] + t * table[(size_t) (k + 1) * ncol + col];
}

// Bilinear interpolation in cell (kx, ky) at fractions (tx, ty) of a row-major table of
// shape (n_x, n_y, width): the `width` values at (x, y) into out
static void bilinear(const double *table, int n_y, int width, int kx, int ky, double tx,
                     double ty, double *out)
{
  const double *t00 = &table[((size_t) kx * n_y + ky) * width];
  const double *t10 = &table[((size_t) (kx + 1) * n_y + ky) * width];
  const double *t01 = &table[((size_t) kx * n_y + ky + 1) * width];
  const double *t11 = &table[((size_t) (kx + 1) * n_y + ky + 1) * width];
  for (int c = 0; c < width; ++c)
    out[c] = (1 - tx) * (1 - ty) * t00[c] + tx * (1 - ty) * t10[c] + (1 - tx) * ty * t01[c] +
        tx * ty * t11[c];
}

// the pair core prior psi(r) = e (1 - r/r0)^2 below r0 and dpsi/dr
// (ddpd.lammps.export.core_pair_energy); callers check r < r0
double FixDdpdTables::core_psi(double r) const
{
  const double x = 1.0 - r / core_radius;
  return core_scale * x * x;
}

double FixDdpdTables::core_slope(double r) const
{
  return -2.0 * core_scale * (1.0 - r / core_radius) / core_radius;
}

// U, T, P, dT/dS at (S, V), bilinear (ddpd.lammps.export.interp2)
void FixDdpdTables::lookup_thermo(double S, double V, double *out, bool count)
{
  int kx, ky;
  double tx, ty;
  int outside = grid_cell(S, S_lo, S_hi, n_S, kx, tx);
  outside += grid_cell(V, V_lo, V_hi, n_V, ky, ty);
  if (count) out_of_range_local += outside;
  bilinear(thermo_table.data(), n_V, 4, kx, ky, tx, ty, out);
}

// S with the bilinear U(S, V) = U (ddpd.lammps.export.Tables.entropy_at): at fixed V the
// table is piecewise linear in S; bisection finds the cell, its line is inverted, the edge
// cells' lines extrapolate outside the S range (counted as out of range)
double FixDdpdTables::entropy_at(double U, double V, bool count)
{
  int ky;
  double ty;
  int outside = grid_cell(V, V_lo, V_hi, n_V, ky, ty);
  auto node = [&](int k) {
    const double *row = &thermo_table[((size_t) k * n_V + ky) * 4];
    return (1 - ty) * row[0] + ty * row[4];
  };
  int lo = 0, hi = n_S - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (node(mid) <= U) lo = mid;
    else hi = mid;
  }
  const double u0 = node(lo), u1 = node(lo + 1);
  const double frac = (U - u0) / (u1 - u0);
  if (frac < 0.0 || frac > 1.0) ++outside;
  if (count) out_of_range_local += outside;
  const double step = (S_hi - S_lo) / (n_S - 1);
  return S_lo + (lo + frac) * step;
}

// a, b, c and their T-slopes at (s, T), bilinear
void FixDdpdTables::lookup_amplitudes(double s, double T, double *out, bool count)
{
  int kx, ky;
  double tx, ty;
  int outside = grid_cell(s, 0.0, 1.0, n_s, kx, tx);
  outside += grid_cell(T, T_lo, T_hi, n_T, ky, ty);
  if (count) out_of_range_local += outside;
  bilinear(friction_table.data(), n_T, 6, kx, ky, tx, ty, out);
}

/* ---------------------------------------------------------------------- */

void FixDdpdTables::forward(double *array, int stride, int count)
{
  comm_array = array;
  comm_stride = stride;
  comm_count = count;
  comm->forward_comm(this, count);
}

void FixDdpdTables::reverse(double *array, int stride, int count)
{
  comm_array = array;
  comm_stride = stride;
  comm_count = count;
  comm->reverse_comm(this, count);
}

int FixDdpdTables::pack_forward_comm(int n, int *list_send, double *buf, int, int *)
{
  int m = 0;
  for (int k = 0; k < n; ++k) {
    const double *src = comm_array + (size_t) list_send[k] * comm_stride;
    for (int c = 0; c < comm_count; ++c) buf[m++] = src[c];
  }
  return m;
}

void FixDdpdTables::unpack_forward_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; ++i) {
    double *dst = comm_array + (size_t) i * comm_stride;
    for (int c = 0; c < comm_count; ++c) dst[c] = buf[m++];
  }
}

int FixDdpdTables::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; ++i) {
    const double *src = comm_array + (size_t) i * comm_stride;
    for (int c = 0; c < comm_count; ++c) buf[m++] = src[c];
  }
  return m;
}

void FixDdpdTables::unpack_reverse_comm(int n, int *list_recv, double *buf)
{
  int m = 0;
  for (int k = 0; k < n; ++k) {
    double *dst = comm_array + (size_t) list_recv[k] * comm_stride;
    for (int c = 0; c < comm_count; ++c) dst[c] += buf[m++];
  }
}

/* ---------------------------------------------------------------------- */

// the energy projection of method.md §3 (ddpd.lammps.external.project_energy,
// ddpd.model.integrate._project_energy): v <- <v> + f (v - <v>) with f such that
// sum m |v|^2 / 2 + U + core prior = energy_target; momentum unchanged. The first call of a run sets
// the target. Ghost copies get the same map, so they stay equal to their owners.
void FixDdpdTables::project_energy(int nlocal, int nall)
{
  double **v = atom->v;
  const double n = (double) atom->natoms;
  double local[3] = {0.0, 0.0, 0.0}, mean[3] = {0.0, 0.0, 0.0};
  for (int i = 0; i < nlocal; ++i)
    for (int a = 0; a < dim; ++a) local[a] += v[i][a];
  MPI_Allreduce(local, mean, 3, MPI_DOUBLE, MPI_SUM, world);
  for (int a = 0; a < dim; ++a) mean[a] /= n;
  double sums_local[2] = {0.0, 0.0}, sums[2];    // sum |v - <v>|^2, sum U
  for (int i = 0; i < nlocal; ++i) {
    for (int a = 0; a < dim; ++a) sums_local[0] += (v[i][a] - mean[a]) * (v[i][a] - mean[a]);
    sums_local[1] += thermo[4 * i] + core_energy[i];
  }
  MPI_Allreduce(sums_local, sums, 2, MPI_DOUBLE, MPI_SUM, world);
  const double kinetic_rel = 0.5 * mass * sums[0];
  const double kinetic_mean = 0.5 * mass * n * dot(mean, mean, dim);
  if (!target_set) {
    energy_target = kinetic_rel + kinetic_mean + sums[1];
    target_set = true;
    return;
  }
  const double needed = energy_target - sums[1] - kinetic_mean;
  if (!(needed > 0.0) || !(kinetic_rel > 0.0))
    error->all(FLERR, "fix ddpd/tables: the energy projection cannot restore the run's "
                      "energy: the internal energy leaves {} for the peculiar kinetic energy "
                      "(now {}); the step's energy error is too large: reduce the timestep, "
                      "or use project no", needed, kinetic_rel);
  const double factor = std::sqrt(needed / kinetic_rel);
  for (int i = 0; i < nall; ++i)
    for (int a = 0; a < dim; ++a) v[i][a] = mean[a] + factor * (v[i][a] - mean[a]);
}

// one Euler-Maruyama step (v_n, S_n) -> (v_{n+1}, S_{n+1}) at x_n (external.euler_update)
void FixDdpdTables::euler_step(bigint step)
{
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if (nall > nmax_scratch) {
    nmax_scratch = atom->nmax > nall ? atom->nmax : nall;
    state.resize((size_t) nmax_scratch * 2);
    thermo.resize((size_t) nmax_scratch * 4);
    acc.resize((size_t) nmax_scratch * ACC_SIZE);
    cg_vec.resize((size_t) nmax_scratch * 3);
    cg_out.resize((size_t) nmax_scratch * 3);
    heat_acc.resize((size_t) nmax_scratch * 2);
    core_energy.resize((size_t) nmax_scratch);
  }
  double *S = atom->dvector[entropy_index];
  double **x = atom->x, **v = atom->v;
  tagint *tag = atom->tag;
  const int newton = force->newton_pair;
  const double dt = update->dt;
  const double h = cutoff, cutsq = cutoff * cutoff;
  const int inum = list->inum;
  int *ilist = list->ilist, *numneigh = list->numneigh, **firstneigh = list->firstneigh;

  // 1. density: owned atoms start at w(0), ghosts at 0 and are sent back (newton on);
  //    with it the pair core prior's energy per atom, half of each pair's psi
  for (int i = 0; i < nall; ++i) {
    state[2 * i] = i < nlocal ? S[i] : 0.0;
    state[2 * i + 1] = i < nlocal ? w_self : 0.0;
    core_energy[i] = 0.0;
  }
  const bool has_core = core_scale > 0.0 && core_radius > 0.0;
  for (int ii = 0; ii < inum; ++ii) {
    const int i = ilist[ii];
    int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      double rsq = 0.0;
      for (int a = 0; a < dim; ++a) rsq += (x[i][a] - x[j][a]) * (x[i][a] - x[j][a]);
      if (rsq >= cutsq) continue;
      const double dist = std::sqrt(rsq);
      const double w = interp1(kernel_table, n_kernel, 2, 0, dist / h);
      const bool add_j = newton || j < nlocal;
      state[2 * i + 1] += w;
      if (add_j) state[2 * j + 1] += w;
      if (has_core && dist < core_radius) {
        const double psi = core_psi(dist);
        core_energy[i] += 0.5 * psi;
        if (add_j) core_energy[j] += 0.5 * psi;
      }
    }
  }
  if (newton) {
    reverse(&state[1], 2, 1);
    if (has_core) reverse(core_energy.data(), 1, 1);
  }

  // 2. (S, d) to ghosts, thermodynamics of every atom
  forward(&state[0], 2, 2);
  for (int i = 0; i < nall; ++i)
    lookup_thermo(state[2 * i], 1.0 / state[2 * i + 1], &thermo[4 * i], i < nlocal);
  if (project_flag) project_energy(nlocal, nall);

  if (record_every > 0 && step % record_every == 0) {
    for (int i = 0; i < nlocal; ++i) {
      for (int a = 0; a < 3; ++a) record[i][a] = v[i][a];
      record[i][3] = S[i];
      record[i][4] = thermo[4 * i] + core_energy[i];
    }
  }

  // 3. pair loop
  std::fill(acc.begin(), acc.begin() + (size_t) nall * ACC_SIZE, 0.0);
  const bool store_pairs = midpoint || heat_exact;
  if (store_pairs) {
    pair_i.clear(), pair_j.clear(), pair_e.clear();
    pair_a2.clear(), pair_b2.clear(), pair_kappa.clear(), pair_kick.clear();
    pair_rate_v.clear(), pair_heat_i.clear(), pair_heat_j.clear();
  }
  const double m = mass;
  const double scale = std::sqrt(2.0 * k_B * dt);
  const int n_normals = dim * dim + 1;
  double r[3], e[3], u[3], Ku[3], dKi_u[3], dKj_u[3], pair_v[3], f[3];
  double fi[6], fj[6], z[10], xi[9];
  for (int ii = 0; ii < inum; ++ii) {
    const int i = ilist[ii];
    int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      double rsq = 0.0;
      for (int a = 0; a < dim; ++a) {
        r[a] = x[i][a] - x[j][a];
        rsq += r[a] * r[a];
      }
      if (rsq >= cutsq) continue;
      const bool add_j = newton || j < nlocal;
      const bool count = add_j || tag[i] < tag[j];    // each pair counted once
      const double dist = std::sqrt(rsq);
      for (int a = 0; a < dim; ++a) e[a] = r[a] / dist;
      const double s = dist / h;
      const double dw_dr = interp1(kernel_table, n_kernel, 2, 1, s);
      const double *thi = &thermo[4 * i], *thj = &thermo[4 * j];
      const double di = state[2 * i + 1], dj = state[2 * j + 1];
      const double Ti = thi[1], Tj = thj[1], dTi = thi[3], dTj = thj[3];

      // conservative force F_i = -sum_j [(P_i/d_i^2 + P_j/d_j^2) w'(r) + psi'(r)] e_ij
      double coef = -(thi[2] / (di * di) + thj[2] / (dj * dj)) * dw_dr;
      if (has_core && dist < core_radius) coef -= core_slope(dist);
      double *acc_i = &acc[(size_t) i * ACC_SIZE], *acc_j = &acc[(size_t) j * ACC_SIZE];
      for (int a = 0; a < dim; ++a) {
        acc_i[ACC_F + a] += coef * e[a];
        if (add_j) acc_j[ACC_F + a] -= coef * e[a];
      }

      // friction amplitudes A, B, C and their T-slopes (ddpd.lammps.export.table_rates)
      lookup_amplitudes(s, Ti, fi, count);
      lookup_amplitudes(s, Tj, fj, count);
      const double tau = 1.0 - s * s;
      const double A = fi[0] * fj[0] * tau, B = fi[1] * fj[1] * tau, C = fi[2] * fj[2] * tau;
      const double Ai = fi[3] * fj[0] * tau, Bi = fi[4] * fj[1] * tau, Ci = fi[5] * fj[2] * tau;
      const double Aj = fi[0] * fj[3] * tau, Bj = fi[1] * fj[4] * tau, Cj = fi[2] * fj[5] * tau;
      for (int a = 0; a < dim; ++a) u[a] = v[i][a] - v[j][a];
      const double eu = dot(e, u, dim);
      k_dot(A * A, B * B, u, eu, e, dim, Ku);
      const double uKu = dot(u, Ku, dim);
      const double trK = 0.5 * A * A * dim + 0.5 * A * A + (B * B - A * A) / dim;
      const double kappa = 0.5 / Ti + 0.5 / Tj;
      const double cg = C / Ti - C / Tj;
      const double drift_Si = kappa * uKu / (2 * Ti) + C / Ti * cg;
      const double drift_Sj = kappa * uKu / (2 * Tj) - C / Tj * cg;
      // k_B div M (ddpd.model.bracket.pair_divergence)
      k_dot(2 * A * Ai, 2 * B * Bi, u, eu, e, dim, dKi_u);
      k_dot(2 * A * Aj, 2 * B * Bj, u, eu, e, dim, dKj_u);
      const double uKiu = dot(u, dKi_u, dim), uKju = dot(u, dKj_u, dim);
      const double d_SiSi = uKiu / (4 * Ti * Ti) - uKu / (2 * Ti * Ti * Ti) +
          2 * C * Ci / (Ti * Ti) - 2 * C * C / (Ti * Ti * Ti);
      const double d_SjSj = uKju / (4 * Tj * Tj) - uKu / (2 * Tj * Tj * Tj) +
          2 * C * Cj / (Tj * Tj) - 2 * C * C / (Tj * Tj * Tj);
      const double d_SiSj = uKju / (4 * Ti * Tj) - uKu / (4 * Ti * Tj * Tj) -
          2 * C * Cj / (Ti * Tj) + C * C / (Ti * Tj * Tj);
      const double d_SjSi = uKiu / (4 * Ti * Tj) - uKu / (4 * Ti * Ti * Tj) -
          2 * C * Ci / (Ti * Tj) + C * C / (Ti * Ti * Tj);
      // midpoint: no kinetic Ito term -tr K / (m T); the noise work at u_mid supplies it
      // (ddpd.model.metriplectic.MetriplecticModel.midpoint_terms)
      const double ito = midpoint ? 0.0 : trK / m;
      const double div_Si = -ito / Ti + dTi * d_SiSi + dTj * d_SiSj;
      const double div_Sj = -ito / Tj + dTj * d_SjSj + dTi * d_SjSi;
      for (int a = 0; a < dim; ++a) {
        const double drift_v = -kappa * Ku[a] / m;
        const double div_v = dTi * (-dKi_u[a] / (2 * m * Ti) + Ku[a] / (2 * m * Ti * Ti)) +
            dTj * (-dKj_u[a] / (2 * m * Tj) + Ku[a] / (2 * m * Tj * Tj));
        pair_v[a] = drift_v + k_B * div_v;
        acc_i[ACC_PV + a] += pair_v[a];
        if (add_j) acc_j[ACC_PV + a] -= pair_v[a];
      }
      acc_i[ACC_RS] += drift_Si + k_B * div_Si;
      if (add_j) acc_j[ACC_RS] += drift_Sj + k_B * div_Sj;
      double heat_i = Ti * (drift_Si + k_B * div_Si) * dt;
      double heat_j = Tj * (drift_Sj + k_B * div_Sj) * dt;

      // pair noise (method.md §2; ddpd.lammps.external.noise_kick)
      if (noise_flag) {
        pair_normals((uint64_t) step, (uint64_t) tag[i], (uint64_t) tag[j], seed, n_normals, z);
        for (int k = 0; k < dim * dim; ++k) xi[k] = z[k];
        const double zeta = (tag[i] < tag[j] ? 1.0 : -1.0) * z[dim * dim];
        double trace = 0.0;
        for (int a = 0; a < dim; ++a) trace += xi[a * dim + a];
        trace /= dim;
        for (int a = 0; a < dim; ++a) {
          double xe = 0.0;
          for (int b = 0; b < dim; ++b) {
            const double sym = 0.5 * (xi[a * dim + b] + xi[b * dim + a]) - (a == b ? trace : 0.0);
            xe += sym * e[b];
          }
          f[a] = A * xe + B * trace * e[a];
        }
        const double work = -dot(f, u, dim) / 2;
        for (int a = 0; a < dim; ++a) {
          acc_i[ACC_KV + a] += scale * f[a] / m;
          if (add_j) acc_j[ACC_KV + a] -= scale * f[a] / m;
        }
        acc_i[ACC_KS] += scale * (work + C * zeta) / Ti;
        if (add_j) acc_j[ACC_KS] += scale * (work - C * zeta) / Tj;
        heat_i += scale * (work + C * zeta);
        heat_j += scale * (work - C * zeta);
        if (store_pairs)
          for (int a = 0; a < dim; ++a) pair_kick.push_back(scale * f[a] / m);
      }

      if (store_pairs) {
        pair_i.push_back(i);
        pair_j.push_back(j);
        for (int a = 0; a < dim; ++a) {
          pair_e.push_back(e[a]);
          pair_rate_v.push_back(pair_v[a]);
        }
        pair_a2.push_back(A * A);
        pair_b2.push_back(B * B);
        pair_kappa.push_back(kappa);
        pair_heat_i.push_back(heat_i);
        pair_heat_j.push_back(heat_j);
      }
    }
  }
  if (newton) reverse(&acc[0], ACC_SIZE, ACC_SIZE);

  // 4. velocity change of owned atoms; 5. entropies (needs v_n), then v_{n+1}
  vel_change.resize((size_t) nlocal * dim);
  if (midpoint) {
    midpoint_solve(nlocal, vel_change);
  } else {
    for (int i = 0; i < nlocal; ++i) {
      const double *acc_i = &acc[(size_t) i * ACC_SIZE];
      for (int a = 0; a < dim; ++a)
        vel_change[dim * i + a] =
            (acc_i[ACC_F + a] / mass + acc_i[ACC_PV + a]) * dt + acc_i[ACC_KV + a];
    }
  }
  entropy_update(nlocal);
  for (int i = 0; i < nlocal; ++i)
    for (int a = 0; a < dim; ++a) v[i][a] += vel_change[dim * i + a];
  last_step = step;

  int bad_local = 0, bad = 0;
  for (int i = 0; i < nlocal && !bad_local; ++i) {
    if (!std::isfinite(S[i])) bad_local = 1;
    for (int a = 0; a < dim; ++a)
      if (!std::isfinite(v[i][a])) bad_local = 1;
  }
  MPI_Allreduce(&bad_local, &bad, 1, MPI_INT, MPI_MAX, world);
  if (bad)
    error->all(FLERR, "fix ddpd/tables: non-finite velocity or entropy after step {} (the "
                      "model with tables {} diverged)", step, table_file);
}

// out = x + dt/2 L x, (L x)_k = sum over pairs of W (x_i - x_j), + to i, - to j;
// x is given for owned atoms and sent to ghosts here
void FixDdpdTables::apply_friction(const double *x_local, double *out, int nall)
{
  const int nlocal = atom->nlocal;
  const int newton = force->newton_pair;
  const double dt = update->dt;
  for (int i = 0; i < nlocal; ++i)
    for (int a = 0; a < dim; ++a) cg_vec[3 * i + a] = x_local[dim * i + a];
  forward(&cg_vec[0], 3, dim);
  std::fill(cg_out.begin(), cg_out.begin() + (size_t) nall * 3, 0.0);
  double diff[3], kx[3];
  const size_t n_pairs = pair_i.size();
  for (size_t p = 0; p < n_pairs; ++p) {
    const int i = pair_i[p], j = pair_j[p];
    const double *e = &pair_e[p * dim];
    for (int a = 0; a < dim; ++a) diff[a] = cg_vec[3 * i + a] - cg_vec[3 * j + a];
    k_dot(pair_a2[p], pair_b2[p], diff, dot(e, diff, dim), e, dim, kx);
    for (int a = 0; a < dim; ++a) {
      const double flux = pair_kappa[p] * kx[a] / mass;
      cg_out[3 * i + a] += flux;
      if (newton || j < nlocal) cg_out[3 * j + a] -= flux;
    }
  }
  if (newton) reverse(&cg_out[0], 3, dim);
  for (int i = 0; i < nlocal; ++i)
    for (int a = 0; a < dim; ++a)
      out[dim * i + a] = x_local[dim * i + a] + 0.5 * dt * cg_out[3 * i + a];
}

double FixDdpdTables::dot_local(const double *a, const double *b, int nlocal)
{
  double local = 0.0, total = 0.0;
  for (int k = 0; k < dim * nlocal; ++k) local += a[k] * b[k];
  MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, world);
  return total;
}

// midpoint friction (external.midpoint_velocity_change): CG solve of (I + dt L/2) y = rhs
void FixDdpdTables::midpoint_solve(int nlocal, std::vector<double> &y)
{
  const double dt = update->dt;
  const int nall = nlocal + atom->nghost;
  const size_t n = (size_t) nlocal * dim;
  std::vector<double> rhs(n), res(n), direction(n), a_dir(n);
  for (int i = 0; i < nlocal; ++i) {
    const double *acc_i = &acc[(size_t) i * ACC_SIZE];
    for (int a = 0; a < dim; ++a)
      rhs[dim * i + a] = (acc_i[ACC_F + a] / mass + acc_i[ACC_PV + a]) * dt + acc_i[ACC_KV + a];
  }
  y = rhs;
  apply_friction(y.data(), a_dir.data(), nall);
  for (size_t k = 0; k < n; ++k) res[k] = rhs[k] - a_dir[k];
  direction = res;
  double rr = dot_local(res.data(), res.data(), nlocal);
  const double stop = cg_tol * cg_tol * dot_local(rhs.data(), rhs.data(), nlocal);
  cg_iterations = 0;
  for (int it = 0; it < cg_max_iter; ++it) {
    if (rr <= stop) break;
    apply_friction(direction.data(), a_dir.data(), nall);
    const double alpha = rr / dot_local(direction.data(), a_dir.data(), nlocal);
    for (size_t k = 0; k < n; ++k) {
      y[k] += alpha * direction[k];
      res[k] -= alpha * a_dir[k];
    }
    const double rr_new = dot_local(res.data(), res.data(), nlocal);
    for (size_t k = 0; k < n; ++k) direction[k] = res[k] + (rr_new / rr) * direction[k];
    rr = rr_new;
    ++cg_iterations;
  }
}

// S_{n+1} of owned atoms (external.pair_increments + euler_update / exact_heat_entropy);
// v is still v_n here (ghosts too), vel_change holds y = v_{n+1} - v_n of owned atoms
void FixDdpdTables::entropy_update(int nlocal)
{
  double *S = atom->dvector[entropy_index];
  double **v = atom->v;
  const double dt = update->dt;
  if (!midpoint && !heat_exact) {
    for (int i = 0; i < nlocal; ++i) {
      const double *acc_i = &acc[(size_t) i * ACC_SIZE];
      S[i] = S[i] + acc_i[ACC_RS] * dt + acc_i[ACC_KS];
    }
    return;
  }
  const int nall = nlocal + atom->nghost;
  const int newton = force->newton_pair;
  for (int i = 0; i < nlocal; ++i)
    for (int a = 0; a < dim; ++a) cg_vec[3 * i + a] = vel_change[dim * i + a];
  forward(&cg_vec[0], 3, dim);
  std::fill(heat_acc.begin(), heat_acc.begin() + (size_t) nall * 2, 0.0);
  double u[3], du[3], u_mid[3], k_mid[3], k_old[3], k_du[3], dv[3];
  for (size_t p = 0; p < pair_i.size(); ++p) {
    const int i = pair_i[p], j = pair_j[p];
    const bool add_j = newton || j < nlocal;
    const double *e = &pair_e[p * dim];
    for (int a = 0; a < dim; ++a) {
      u[a] = v[i][a] - v[j][a];
      dv[a] = pair_rate_v[p * dim + a] * dt + (pair_kick.empty() ? 0.0 : pair_kick[p * dim + a]);
    }
    // midpoint: friction T dS += dt m (u_mid W u_mid - u W u) / 2, noise work
    // -m (u_mid - u) . dv_noise / 2, friction increment -dt W (u_mid - u)
    double change = 0.0;
    if (midpoint) {
      for (int a = 0; a < dim; ++a) {
        du[a] = 0.5 * (cg_vec[3 * i + a] - cg_vec[3 * j + a]);
        u_mid[a] = u[a] + du[a];
      }
      k_dot(pair_a2[p], pair_b2[p], u_mid, dot(e, u_mid, dim), e, dim, k_mid);
      k_dot(pair_a2[p], pair_b2[p], u, dot(e, u, dim), e, dim, k_old);
      k_dot(pair_a2[p], pair_b2[p], du, dot(e, du, dim), e, dim, k_du);
      double w_mid = 0.0, w_old = 0.0;
      for (int a = 0; a < dim; ++a) {
        w_mid += u_mid[a] * (pair_kappa[p] * k_mid[a] / mass);
        w_old += u[a] * (pair_kappa[p] * k_old[a] / mass);
        dv[a] -= dt * pair_kappa[p] * k_du[a] / mass;
      }
      change = dt * mass * (w_mid - w_old) / 2.0;
      if (!pair_kick.empty())
        for (int a = 0; a < dim; ++a) change -= 0.5 * mass * du[a] * pair_kick[p * dim + a];
    }
    if (!heat_exact) {    // linear midpoint: the entropy change at u_mid
      heat_acc[2 * i] += change / thermo[4 * i + 1];
      if (add_j) heat_acc[2 * j] += change / thermo[4 * j + 1];
      continue;
    }
    // exact: the pair's heats sum to minus its kinetic-energy change m u.dv + m |dv|^2
    const double heat_i = pair_heat_i[p] + change, heat_j = pair_heat_j[p] + change;
    const double sq = dot(dv, dv, dim);
    const double excess = heat_i + heat_j + mass * dot(u, dv, dim) + mass * sq;
    heat_acc[2 * i] += heat_i - 0.5 * excess;
    heat_acc[2 * i + 1] += sq;
    if (add_j) {
      heat_acc[2 * j] += heat_j - 0.5 * excess;
      heat_acc[2 * j + 1] += sq;
    }
  }
  if (newton) reverse(&heat_acc[0], 2, 2);

  for (int i = 0; i < nlocal; ++i) {
    const double *acc_i = &acc[(size_t) i * ACC_SIZE];
    if (!heat_exact) {
      S[i] = S[i] + acc_i[ACC_RS] * dt + acc_i[ACC_KS] + heat_acc[2 * i];
      continue;
    }
    // cross terms between the pairs of i: m (|delta_i|^2 - sum_p |dv_p|^2) / 2, with
    // delta_i = y_i - F_i dt / m the non-conservative velocity change
    double delta_sq = 0.0;
    for (int a = 0; a < dim; ++a) {
      const double delta = vel_change[dim * i + a] - acc_i[ACC_F + a] / mass * dt;
      delta_sq += delta * delta;
    }
    const double heat = heat_acc[2 * i] - 0.5 * mass * (delta_sq - heat_acc[2 * i + 1]);
    S[i] = entropy_at(thermo[4 * i] + heat, 1.0 / state[2 * i + 1], true);
  }
}

/* ---------------------------------------------------------------------- */

double FixDdpdTables::compute_vector(int n)
{
  if (n == 0) {
    double total = 0.0;
    MPI_Allreduce(&out_of_range_local, &total, 1, MPI_DOUBLE, MPI_SUM, world);
    return total;
  }
  return cg_iterations;
}

void FixDdpdTables::grow_arrays(int nmax)
{
  memory->grow(record, nmax, RECORD_SIZE, "ddpd/tables:record");
  array_atom = record;
}

void FixDdpdTables::copy_arrays(int i, int j, int)
{
  for (int k = 0; k < RECORD_SIZE; ++k) record[j][k] = record[i][k];
}

int FixDdpdTables::pack_exchange(int i, double *buf)
{
  for (int k = 0; k < RECORD_SIZE; ++k) buf[k] = record[i][k];
  return RECORD_SIZE;
}

int FixDdpdTables::unpack_exchange(int nlocal, double *buf)
{
  for (int k = 0; k < RECORD_SIZE; ++k) record[nlocal][k] = buf[k];
  return RECORD_SIZE;
}

double FixDdpdTables::memory_usage()
{
  double bytes = (double) atom->nmax * RECORD_SIZE * sizeof(double);
  bytes += (double) nmax_scratch * (2 + 4 + ACC_SIZE + 3 + 3 + 2) * sizeof(double);
  bytes += (double) vel_change.capacity() * sizeof(double);
  bytes += (double) (kernel_table.size() + thermo_table.size() + friction_table.size()) *
      sizeof(double);
  bytes += (double) pair_i.capacity() * (2 * sizeof(int) + (3 * dim + 5) * sizeof(double));
  return bytes;
}
