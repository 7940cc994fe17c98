# Training: the metriplectic model (shared/method.md), the baselines that share its training
# loop (gnn, dpd, isothermal) and the Langevin reference.


rule train_model:
    input:
        dataset="results/datasets/{dataset}.h5",
    output:
        model="results/models/{dataset}/{model}/model.pt",
        hparams="results/models/{dataset}/{model}/hparams.json",
        curve=report(
            "results/models/{dataset}/{model}/learning_curve.csv",
            caption="../report/learning_curve.rst",
            category="Training",
            subcategory="{dataset}: {model}",
        ),
    log:
        "results/logs/train/{dataset}_{model}.log",
    benchmark:
        "results/benchmarks/train/{dataset}_{model}.tsv"
    wildcard_constraints:
        model="|".join(LEARNED_MODELS),
    conda:
        "../../envs/torch.yaml"
    threads: config["learn"]["threads"]
    resources:
        mem_mb=8000,
        runtime=lambda w: config["learn"]["runtime_minutes"],
        gpu=1,
    params:
        train=lambda w: as_json(train_params(w.model)),
        out_dir=lambda w, output: str(Path(output.model).parent),
        device=config["learn"]["device"],
    shell:
        "ddpd train --params {params.train:q} --dataset {input.dataset}"
        " --out-dir {params.out_dir} --device {params.device} --threads {threads}"
        " > {log} 2>&1"


rule fit_langevin:
    input:
        dataset="results/datasets/{dataset}.h5",
    output:
        fit="results/models/{dataset}/langevin/fit.json",
    log:
        "results/logs/train/{dataset}_langevin.log",
    benchmark:
        "results/benchmarks/train/{dataset}_langevin.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        langevin=as_json(config["learn"]["langevin"]),
    shell:
        "ddpd fit-langevin --params {params.langevin:q} --dataset {input.dataset}"
        " --out {output.fit} > {log} 2>&1"
