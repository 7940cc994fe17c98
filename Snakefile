"""ddpd study: learn metriplectic coarse-grained dynamics from trajectories.

    snakemake --cores all                                   # workstation
    snakemake --workflow-profile workflow/profiles/slurm    # SLURM cluster
    snakemake --cores all --forceall                        # regenerate everything

The configuration (config.yaml by default) is validated against
workflow/schemas/config.schema.yaml before any job starts.
"""

from snakemake.utils import min_version

min_version("9.0")


# The default study, unless the user passes --configfile (then only that file counts:
# no silent merging of a test or paper config with the default one).
if not config:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/coarsegrain.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/learn.smk"
include: "workflow/rules/rollout.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/lammps.smk"
include: "workflow/rules/known_truth.smk"


rule all:
    default_target: True
    input:
        all_outputs(),


# Seconds-long aggregation (tables, figures, the summary): on a cluster these run in the
# submitting Snakemake process instead of queueing as jobs of their own.
localrules:
    compare,
    plot_statistics,
    plot_learning_curve,
    plot_conservation,
    summary,
