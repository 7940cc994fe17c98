# Known-truth benchmark (issue 5): simulate the metriplectic model itself with analytic
# functions (ddpd.model.known_truth), learn it back with the normal training, and compare
# the learned gauge-invariant physics (k_B T, P V, friction, noise) with the truth on the
# held-out test run. Paths under results/known_truth/ (no clash with the study datasets).


from ddpd.config import known_truth_train_params, simulation_seed

KNOWN_TRUTH_RUNS = {
    split: [f"results/known_truth/{split}/rep{r}.h5" for r in range(count)]
    for split, count in config["known_truth"]["replicas"].items()
}


rule known_truth_simulate:
    output:
        trajectory="results/known_truth/{split}/rep{replica}.h5",
    log:
        "results/logs/known_truth/simulate_{split}_rep{replica}.log",
    benchmark:
        "results/benchmarks/known_truth/simulate_{split}_rep{replica}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        simulation=as_json(config["known_truth"]["simulation"]),
        # independent of every other (config seed, split, replica), the stars' and colloid's
        seed=lambda w: simulation_seed(
            config["seed"], "known_truth", w.split, w.replica
        ),
    shell:
        "ddpd known-truth-simulate --params {params.simulation:q} --seed {params.seed}"
        " --out {output.trajectory} --threads {threads} > {log} 2>&1"


rule known_truth_dataset:
    input:
        train=KNOWN_TRUTH_RUNS["train"],
        validation=KNOWN_TRUTH_RUNS["validation"],
        test=KNOWN_TRUTH_RUNS["test"],
    output:
        dataset="results/known_truth/dataset.h5",
    log:
        "results/logs/known_truth/build_dataset.log",
    benchmark:
        "results/benchmarks/known_truth/build_dataset.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        # recorded velocities (the truth's state); the truth's cutoff for the statistics
        dataset=lambda w: as_json(
            {
                "velocities": "recorded",
                "cutoff": parsed_section("known_truth.simulation").cutoff,
            }
        ),
    shell:
        "ddpd build-dataset --params {params.dataset:q} --train {input.train}"
        " --validation {input.validation} --test {input.test} --out {output.dataset}"
        " > {log} 2>&1"


rule known_truth_train:
    input:
        dataset="results/known_truth/dataset.h5",
    output:
        model="results/known_truth/model/model.pt",
        hparams="results/known_truth/model/hparams.json",
        curve=report(
            "results/known_truth/model/learning_curve.csv",
            caption="../report/known_truth_learning_curve.rst",
            category="Known-truth benchmark",
        ),
    log:
        "results/logs/known_truth/train.log",
    benchmark:
        "results/benchmarks/known_truth/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["learn"]["threads"]
    resources:
        mem_mb=8000,
        runtime=lambda w: config["learn"]["runtime_minutes"],
        gpu=1,
    params:
        train=lambda w: as_json(
            known_truth_train_params(
                config, parsed_section("known_truth.simulation").cutoff
            )
        ),
        out_dir=lambda w, output: str(Path(output.model).parent),
        device=config["learn"]["device"],
    shell:
        "ddpd train --params {params.train:q} --dataset {input.dataset}"
        " --out-dir {params.out_dir} --device {params.device} --threads {threads}"
        " > {log} 2>&1"


rule known_truth_compare:
    input:
        model="results/known_truth/model/model.pt",
        truth=KNOWN_TRUTH_RUNS["test"],
    output:
        errors=report(
            "results/tables/known_truth.json",
            caption="../report/known_truth_errors.rst",
            category="Known-truth benchmark",
        ),
        png=report(
            "results/figures/known_truth.png",
            caption="../report/known_truth_figure.rst",
            category="Known-truth benchmark",
        ),
        pdf="results/figures/known_truth.pdf",
    log:
        "results/logs/known_truth/compare.log",
    benchmark:
        "results/benchmarks/known_truth/compare.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        compare=as_json(config["known_truth"]["compare"]),
        model_dir=lambda w, input: str(Path(input.model).parent),
        prefix=lambda w, output: output.png[: -len(".png")],
    shell:
        "ddpd known-truth-compare --params {params.compare:q} --model-dir {params.model_dir}"
        " --truth {input.truth} --out-json {output.errors} --out-prefix {params.prefix}"
        " > {log} 2>&1"
