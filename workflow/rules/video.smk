# Microscopy video -> trajectories: the rendered twin of the colloid simulation
# (ground truth known) and the real bulk_water video (issue 4).


rule render_video:
    input:
        truth="results/colloid/{split}/rep{replica}/truth.h5",
    output:
        video="results/colloid/{split}/rep{replica}/video.mkv",
        truth_px="results/colloid/{split}/rep{replica}/truth_px.h5",
    log:
        "results/logs/render_video/{split}_rep{replica}.log",
    benchmark:
        "results/benchmarks/render_video/{split}_rep{replica}.tsv"
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        render=as_json(config["colloid"]["render"]),
    shell:
        "ddpd render-video --params {params.render:q} --truth {input.truth}"
        " --video {output.video} --truth-px {output.truth_px} > {log} 2>&1"


rule track_colloid_video:
    input:
        video="results/colloid/{split}/rep{replica}/video.mkv",
    output:
        tracks="results/colloid/{split}/rep{replica}/tracks.h5",
    log:
        "results/logs/track_video/colloid_{split}_rep{replica}.log",
    benchmark:
        "results/benchmarks/track_video/colloid_{split}_rep{replica}.tsv"
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        track=as_json(config["colloid"]["track"]),
    shell:
        "ddpd track-video --params {params.track:q} --video {input.video}"
        " --out {output.tracks} > {log} 2>&1"


rule tracking_quality:
    input:
        tracks="results/colloid/{split}/rep{replica}/tracks.h5",
        truth_px="results/colloid/{split}/rep{replica}/truth_px.h5",
    output:
        quality=report(
            "results/colloid/{split}/rep{replica}/quality.json",
            caption="../report/tracking_quality.rst",
            category="Video tracking",
        ),
        figure=report(
            "results/figures/colloid_{split}_rep{replica}_tracking.png",
            caption="../report/tracking_figure.rst",
            category="Video tracking",
        ),
        pdf="results/figures/colloid_{split}_rep{replica}_tracking.pdf",
    log:
        "results/logs/tracking_quality/{split}_rep{replica}.log",
    benchmark:
        "results/benchmarks/tracking_quality/{split}_rep{replica}.tsv"
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        quality=as_json(config["colloid"]["quality"]),
        prefix=lambda w, output: output.figure[: -len(".png")],
    shell:
        "ddpd tracking-quality --params {params.quality:q} --tracks {input.tracks}"
        " --truth-px {input.truth_px} --out-json {output.quality}"
        " --figure {params.prefix} > {log} 2>&1"


rule track_real_video:
    input:
        video=real_video_path(),
    output:
        tracks="results/real_video/tracks.h5",
    log:
        "results/logs/track_video/real_video.log",
    benchmark:
        "results/benchmarks/track_video/real_video.tsv"
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        track=as_json(config["real_video"]["track"]),
    shell:
        "ddpd track-video --params {params.track:q} --video {input.video}"
        " --out {output.tracks} > {log} 2>&1"


rule real_video_diffusion:
    input:
        tracks="results/real_video/tracks.h5",
    output:
        diffusion=report(
            "results/real_video/diffusion.json",
            caption="../report/diffusion.rst",
            category="Real video",
        ),
        figure=report(
            "results/figures/real_video_msd.png",
            caption="../report/diffusion.rst",
            category="Real video",
        ),
        pdf="results/figures/real_video_msd.pdf",
    log:
        "results/logs/real_video_diffusion.log",
    benchmark:
        "results/benchmarks/real_video_diffusion.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        diffusion=as_json(config["real_video"]["diffusion"]),
        prefix=lambda w, output: output.figure[: -len(".png")],
    shell:
        "ddpd diffusion --params {params.diffusion:q} --tracks {input.tracks}"
        " --out-json {output.diffusion} --figure {params.prefix} > {log} 2>&1"
