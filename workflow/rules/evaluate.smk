# Statistics, comparison with the held-out truth, figures and tables (issue 6).


rule floor_window:
    input:
        replicas=floor_replicas,
    output:
        trajectory="results/floor/{dataset}.h5",
    log:
        "results/logs/floor/{dataset}.log",
    benchmark:
        "results/benchmarks/floor/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        window=lambda w: floor_window_params(),
    shell:
        "ddpd floor-window --params {params.window:q} --replica {input.replicas}"
        " --out {output.trajectory} > {log} 2>&1"


rule statistics_floor:
    input:
        trajectory="results/floor/{dataset}.h5",
    output:
        stats="results/stats/{dataset}/floor.json",
    log:
        "results/logs/statistics/{dataset}_floor.log",
    benchmark:
        "results/benchmarks/statistics/{dataset}_floor.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        stats=as_json(config["statistics"]),
    shell:
        "ddpd statistics --params {params.stats:q} --trajectory {input.trajectory}"
        " --out {output.stats} > {log} 2>&1"


rule statistics_truth:
    input:
        trajectory=truth_trajectory,
    output:
        stats="results/stats/{dataset}/truth.json",
    log:
        "results/logs/statistics/{dataset}_truth.log",
    benchmark:
        "results/benchmarks/statistics/{dataset}_truth.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        stats=lambda w: truth_statistics_params(),
    shell:
        "ddpd statistics --params {params.stats:q} --trajectory {input.trajectory}"
        " --out {output.stats} > {log} 2>&1"


rule statistics_model:
    input:
        trajectory="results/rollouts/{dataset}/{model}/seed{seed}.h5",
    output:
        stats="results/stats/{dataset}/{model}/seed{seed}.json",
    log:
        "results/logs/statistics/{dataset}_{model}_seed{seed}.log",
    benchmark:
        "results/benchmarks/statistics/{dataset}_{model}_seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        stats=as_json(config["statistics"]),
    shell:
        "ddpd statistics --params {params.stats:q} --trajectory {input.trajectory}"
        " --out {output.stats} > {log} 2>&1"


rule compare:
    input:
        truth="results/stats/{dataset}/truth.json",
        floor="results/stats/{dataset}/floor.json",
        models=seed_statistics,
    output:
        csv="results/tables/{dataset}_errors.csv",
        md=report(
            "results/tables/{dataset}_errors.md",
            caption="../report/errors.rst",
            category="Errors",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/compare/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        models=lambda w, input: [f"{Path(p).parent.name}={p}" for p in input.models],
    shell:
        "ddpd compare --truth {input.truth} --model {params.models} --floor {input.floor}"
        " --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule plot_statistics:
    input:
        truth="results/stats/{dataset}/truth.json",
        floor="results/stats/{dataset}/floor.json",
        # the first rollout seed's statistics (the error tables give all seeds' range)
        models=expand(
            "results/stats/{{dataset}}/{model}/seed{seed}.json",
            model=MODELS,
            seed=FIRST_SEED,
        ),
    output:
        png=report(
            "results/figures/{dataset}_statistics.png",
            caption="../report/statistics.rst",
            category="Held-out statistics",
            subcategory="{dataset}",
        ),
        pdf="results/figures/{dataset}_statistics.pdf",
    log:
        "results/logs/plot/{dataset}_statistics.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        stats=lambda w, input: [f"truth={input.truth}", f"floor={input.floor}"]
        + [f"{m}={p}" for m, p in zip(MODELS, input.models)],
        prefix=lambda w, output: output.png[: -len(".png")],
    shell:
        "ddpd plot-statistics --stats {params.stats} --out-prefix {params.prefix} > {log} 2>&1"


rule plot_learning_curve:
    input:
        curve="results/models/{dataset}/metriplectic/learning_curve.csv",
    output:
        png=report(
            "results/figures/{dataset}_learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Training",
            subcategory="{dataset}",
        ),
        pdf="results/figures/{dataset}_learning_curve.pdf",
    log:
        "results/logs/plot/{dataset}_learning_curve.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        prefix=lambda w, output: output.png[: -len(".png")],
    shell:
        "ddpd plot-learning-curve --curve {input.curve} --out-prefix {params.prefix} > {log} 2>&1"


rule plot_conservation:
    input:
        rollout=f"results/rollouts/{{dataset}}/metriplectic/seed{FIRST_SEED}.h5",
    output:
        png=report(
            "results/figures/{dataset}_conservation.png",
            caption="../report/conservation.rst",
            category="Conservation",
            subcategory="{dataset}",
        ),
        pdf="results/figures/{dataset}_conservation.pdf",
    log:
        "results/logs/plot/{dataset}_conservation.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        prefix=lambda w, output: output.png[: -len(".png")],
    shell:
        "ddpd plot-conservation --rollout {input.rollout} --out-prefix {params.prefix} > {log} 2>&1"


rule summary:
    input:
        errors=expand("results/tables/{dataset}_errors.csv", dataset=LEARN_DATASETS),
        quality=(
            [
                f"results/colloid/test/rep{r}/quality.json"
                for r in replicas("colloid", "test")
            ]
            if config["colloid"]["enabled"]
            else []
        ),
        diffusion=(
            ["results/real_video/diffusion.json"]
            if config["real_video"]["enabled"]
            else []
        ),
        training=expand(
            "results/models/{dataset}/{model}/hparams.json",
            dataset=LEARN_DATASETS,
            model=LEARNED_MODELS,
        )
        + (
            ["results/known_truth/model/hparams.json"]
            if config["known_truth"]["enabled"]
            else []
        ),
    output:
        md=report(
            "results/tables/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/summary.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "ddpd summary --errors {input.errors} --quality {input.quality}"
        " --diffusion {input.diffusion} --training {input.training}"
        " --out {output.md} > {log} 2>&1"


rule learned_physics:
    input:
        model="results/models/{dataset}/{model}/model.pt",
        dataset="results/datasets/{dataset}.h5",
    output:
        png=report(
            "results/figures/{dataset}_learned_physics_{model}.png",
            caption="../report/learned_physics.rst",
            category="Learned physics",
            subcategory="{dataset}",
        ),
        pdf="results/figures/{dataset}_learned_physics_{model}.pdf",
    log:
        "results/logs/plot/{dataset}_learned_physics_{model}.log",
    wildcard_constraints:
        model="metriplectic|isothermal",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        model_dir=lambda w, input: str(Path(input.model).parent),
        prefix=lambda w, output: output.png[: -len(".png")],
    shell:
        "ddpd learned-physics --model-dir {params.model_dir} --dataset {input.dataset}"
        " --out-prefix {params.prefix} > {log} 2>&1"


rule entropy_observables:
    input:
        model="results/models/{dataset}/metriplectic/model.pt",
        dataset="results/datasets/{dataset}.h5",
        trajectories=lambda w: split_trajectories(w.dataset, "test"),
    output:
        json=report(
            "results/tables/{dataset}_entropy_observables.json",
            caption="../report/entropy_observables.rst",
            category="Learned physics",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/entropy_observables/{dataset}.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        model_dir=lambda w, input: str(Path(input.model).parent),
    shell:
        "ddpd entropy-observables --model-dir {params.model_dir} --dataset {input.dataset}"
        " --trajectories {input.trajectories} --out {output.json} > {log} 2>&1"
