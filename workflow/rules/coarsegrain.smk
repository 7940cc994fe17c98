# Coarse datasets: snapshot pairs split by independent trajectory (train / validation / test).
# The star centre-of-mass mapping itself runs on the fly inside `simulate_stars`
# (streamed, so no multi-GB bead trajectories are written); it is tested against
# LAMMPS's own `compute com/chunk`.


rule build_dataset:
    input:
        train=lambda w: split_trajectories(w.dataset, "train"),
        validation=lambda w: split_trajectories(w.dataset, "validation"),
        test=lambda w: split_trajectories(w.dataset, "test"),
    output:
        dataset="results/datasets/{dataset}.h5",
    log:
        "results/logs/build_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/build_dataset/{dataset}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        dataset=lambda w: dataset_params(w.dataset),
    shell:
        "ddpd build-dataset --params {params.dataset:q} --train {input.train}"
        " --validation {input.validation} --test {input.test} --out {output.dataset}"
        " > {log} 2>&1"
