# Fine-grained LAMMPS reference simulations (issue 3, issue 4's colloid source).


rule simulate_stars:
    output:
        trajectory="results/stars/{system}/{condition}/{split}/rep{replica}.h5",
    log:
        "results/logs/simulate_stars/{system}_{condition}_{split}_rep{replica}.log",
        lammps="results/logs/simulate_stars/{system}_{condition}_{split}_rep{replica}.lammps.log",
    benchmark:
        "results/benchmarks/simulate_stars/{system}_{condition}_{split}_rep{replica}.tsv"
    conda:
        "../../envs/lammps.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda w: config["stars"]["runtime_minutes"],
    params:
        lammps=lambda w: as_json(config["stars"]["systems"][w.system]),
        seed=lambda w: replica_seed("stars", w.split, w.replica),
        shear_rate=lambda w: config["stars"]["conditions"][w.condition],
    shell:
        "ddpd simulate-stars --params {params.lammps:q} --seed {params.seed}"
        " --shear-rate {params.shear_rate} --out {output.trajectory}"
        " --lammps-log {log.lammps} > {log[0]} 2>&1"


rule simulate_colloid:
    output:
        trajectory="results/colloid/{split}/rep{replica}/truth.h5",
    log:
        "results/logs/simulate_colloid/{split}_rep{replica}.log",
        lammps="results/logs/simulate_colloid/{split}_rep{replica}.lammps.log",
    benchmark:
        "results/benchmarks/simulate_colloid/{split}_rep{replica}.tsv"
    conda:
        "../../envs/lammps.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        lammps=as_json(config["colloid"]["simulation"]),
        seed=lambda w: replica_seed("colloid", w.split, w.replica),
    shell:
        "ddpd simulate-colloid --params {params.lammps:q} --seed {params.seed}"
        " --out {output.trajectory} --lammps-log {log.lammps} > {log[0]} 2>&1"
