# The trained star model inside LAMMPS on a box much larger than the training box (issue 7).


rule lammps_export:
    input:
        model="results/models/{dataset}/metriplectic/model.pt",
        dataset="results/datasets/{dataset}.h5",
        # the (S, V) range of the tables covers where the model's own rollout goes
        rollout=f"results/rollouts/{{dataset}}/metriplectic/seed{FIRST_SEED}.h5",
    output:
        tables="results/lammps/{dataset}/tables.npz",
        errors=report(
            "results/lammps/{dataset}/interpolation_errors.json",
            caption="../report/lammps_export.rst",
            category="LAMMPS",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/lammps_export/{dataset}.log",
    benchmark:
        "results/benchmarks/lammps_export/{dataset}.tsv"
    conda:
        "../../envs/coarse_lammps.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        export=as_json(config["lammps"]["export"]),
        model_dir=lambda w, input: str(Path(input.model).parent),
    shell:
        "ddpd lammps-export --params {params.export:q} --model-dir {params.model_dir}"
        " --dataset {input.dataset} --rollout {input.rollout} --out {output.tables}"
        " --out-json {output.errors}"
        " > {log} 2>&1"


rule lammps_rollout:
    input:
        model="results/models/{dataset}/metriplectic/model.pt",
        dataset="results/datasets/{dataset}.h5",
        tables="results/lammps/{dataset}/tables.npz",
    output:
        rollout="results/lammps/{dataset}/rollout.h5",
        timing=report(
            "results/lammps/{dataset}/timing.json",
            caption="../report/lammps_rollout.rst",
            category="LAMMPS",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/lammps_rollout/{dataset}.log",
        lammps="results/logs/lammps_rollout/{dataset}.lammps.log",
    benchmark:
        "results/benchmarks/lammps_rollout/{dataset}.tsv"
    conda:
        "../../envs/coarse_lammps.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=120,
        gpu=1,
    params:
        rollout=as_json(config["lammps"]["rollout"]),
        model_dir=lambda w, input: str(Path(input.model).parent),
    shell:
        "ddpd lammps-rollout --params {params.rollout:q} --model-dir {params.model_dir}"
        " --dataset {input.dataset} --tables {input.tables} --out {output.rollout}"
        " --out-json {output.timing} --lammps-log {log.lammps} > {log[0]} 2>&1"
