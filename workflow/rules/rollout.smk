# Coarse rollouts from held-out (test) initial states, one per noise seed (rollout_seeds).


rule rollout_model:
    input:
        model="results/models/{dataset}/{model}/model.pt",
        hparams="results/models/{dataset}/{model}/hparams.json",
        dataset="results/datasets/{dataset}.h5",
    output:
        rollout="results/rollouts/{dataset}/{model}/seed{seed}.h5",
    log:
        "results/logs/rollout/{dataset}_{model}_seed{seed}.log",
    benchmark:
        "results/benchmarks/rollout/{dataset}_{model}_seed{seed}.tsv"
    wildcard_constraints:
        model="|".join(LEARNED_MODELS),
    conda:
        "../../envs/torch.yaml"
    threads: config["learn"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    params:
        rollout=rollout_params,
        model_dir=lambda w, input: str(Path(input.model).parent),
    shell:
        "ddpd rollout --params {params.rollout:q} --model-dir {params.model_dir}"
        " --dataset {input.dataset} --out {output.rollout} --threads {threads}"
        " > {log} 2>&1"


rule rollout_langevin:
    input:
        fit="results/models/{dataset}/langevin/fit.json",
        dataset="results/datasets/{dataset}.h5",
    output:
        rollout="results/rollouts/{dataset}/langevin/seed{seed}.h5",
    log:
        "results/logs/rollout/{dataset}_langevin_seed{seed}.log",
    benchmark:
        "results/benchmarks/rollout/{dataset}_langevin_seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        rollout=rollout_params,
    shell:
        "ddpd rollout-langevin --params {params.rollout:q} --fit {input.fit}"
        " --dataset {input.dataset} --out {output.rollout} > {log} 2>&1"
