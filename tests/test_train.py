"""train(): outputs, learning, seed determinism, resume after a kill."""

import csv
import dataclasses
import json

import pytest
import torch
from coarse.synthetic import soft_sphere_dataset

import ddpd.train as train_module
from ddpd.coarse.dataset import load_dataset, snapshots
from ddpd.model.api import load_model
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.train import train

PARAMS = {"epochs": 4, "batch_frames": 3, "lr": 5e-3, "model": {"width": 8, "depth": 1,
                                                                "teacher_features": 4}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    return soft_sphere_dataset(d / "ds.h5", n=25, frames=25)


def _curve(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_outputs_and_learning(dataset, tmp_path):
    params = dict(PARAMS, epochs=8)
    train(dataset, params, tmp_path / "m", device="cpu")
    for name in ("model.pt", "hparams.json", "learning_curve.csv", "checkpoint.pt"):
        assert (tmp_path / "m" / name).is_file()
    rows = _curve(tmp_path / "m" / "learning_curve.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(9))
    val = [float(r["validation_nll"]) for r in rows]
    assert min(val[1:]) < val[0] - 0.3  # it learns
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    assert info["best_epoch"] == min(range(9), key=lambda k: val[k])
    assert info["stop_reason"] == "epochs"
    labels = info["entropy_labels"]  # the check of the teacher's labels (test_entropy_labels)
    assert labels["frames"] > 3 and "_run1" in labels["run"]  # on the validation run
    assert labels["fluctuation"] > 0 and labels["einstein_spread"] > 0
    # the saved model is the selected one and reloads with weights_only
    model = load_model(tmp_path / "m")
    data = load_dataset(dataset)
    snaps = snapshots(data, "validation", model.cutoff)
    nll = train_module.mean_nll(model, snaps, data.stats["dt"], 3)
    assert nll == pytest.approx(min(val), rel=1e-4)


def test_core_prior_sits_below_the_training_data_and_leaves_the_fit_unchanged(dataset,
                                                                              tmp_path):
    """train.model.core_repulsion: r0 is the closest approach of the training snapshots, so
    no training pair feels the prior; training follows the run without it step for step."""
    plain = dict(PARAMS, epochs=2)
    cored = dict(plain, model=dict(PARAMS["model"], core_repulsion=20.0))
    train(dataset, plain, tmp_path / "plain", device="cpu")
    train(dataset, cored, tmp_path / "core", device="cpu")
    data = load_dataset(dataset)
    model = load_model(tmp_path / "core")
    r0 = train_module.closest_approach(snapshots(data, "train", model.cutoff))
    assert model.has_core and model.core_radius == pytest.approx(r0, rel=1e-6)
    assert not load_model(tmp_path / "plain").has_core
    a, b = _curve(tmp_path / "plain" / "learning_curve.csv"), _curve(
        tmp_path / "core" / "learning_curve.csv")
    assert [r["train_nll"] for r in a] == [r["train_nll"] for r in b]
    state_a = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)
    state_b = torch.load(tmp_path / "core" / "model.pt", weights_only=True)
    for name, value in state_a.items():
        torch.testing.assert_close(state_b[name], value, rtol=0, atol=0)

    # without a training pair there is no closest approach to place it at
    alone = dict(plain, model=dict(cored["model"], cutoff=1e-3))
    with pytest.raises(ValueError, match="core_repulsion needs the closest approach of the "
                                         "training pairs for its radius, got inf"):
        train(dataset, alone, tmp_path / "alone", device="cpu")


def test_seed_determinism(dataset, tmp_path):
    train(dataset, PARAMS, tmp_path / "a", device="cpu")
    train(dataset, PARAMS, tmp_path / "b", device="cpu")
    train(dataset, dict(PARAMS, seed=1), tmp_path / "c", device="cpu")
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    c = torch.load(tmp_path / "c" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_stop_reason_patience_and_wall_time(dataset, tmp_path, monkeypatch):
    """hparams.json says why training ended; the wall-time limit (machine-dependent) warns."""
    with pytest.warns(UserWarning, match="wall-time limit"):
        train(dataset, dict(PARAMS, max_wall_minutes=1e-9), tmp_path / "wall", device="cpu")
    info = json.loads((tmp_path / "wall" / "hparams.json").read_text())
    assert info["stop_reason"] == "wall_time"
    assert [int(r["epoch"]) for r in _curve(tmp_path / "wall" / "learning_curve.csv")] == [0, 1]
    # a validation NLL that never improves: patience 2 after no warm-up stops at epoch 2
    monkeypatch.setattr(train_module, "mean_nll", lambda *args, **kwargs: 1.0)
    train(dataset, dict(PARAMS, patience=2, warmup_epochs=0), tmp_path / "flat", device="cpu")
    info = json.loads((tmp_path / "flat" / "hparams.json").read_text())
    assert info["stop_reason"] == "patience"
    assert len(_curve(tmp_path / "flat" / "learning_curve.csv")) == 3


def test_resume_after_kill_gives_the_same_result(dataset, tmp_path, monkeypatch):
    train(dataset, PARAMS, tmp_path / "full", device="cpu")
    calls = {"n": 0}
    original = train_module.mean_nll
    # killed in the validation after epoch 3 (call 1 is epoch 0)
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls, kill_at=4))
    with pytest.raises(KeyboardInterrupt):
        train(dataset, PARAMS, tmp_path / "killed", device="cpu")
    assert not (tmp_path / "killed" / "model.pt").exists()
    ck = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2
    # the restarted run's calibration differs in the last bits (as pair sums on a CUDA
    # device do): it still resumes, validating only the epochs left (3 and 4), not epoch 0
    original_calibrate = MetriplecticModel.calibrate
    perturbed = []

    def calibrate_to_round_off(self, snaps, dt):
        out = original_calibrate(self, snaps, dt)
        perturbed.extend(k for k, v in out.items() if isinstance(v, float) and v != 0)
        return {k: v * (1 + 1e-15) if isinstance(v, float) else v for k, v in out.items()}

    monkeypatch.setattr(MetriplecticModel, "calibrate", calibrate_to_round_off)
    calls["n"] = 0
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls))
    train(dataset, PARAMS, tmp_path / "killed", device="cpu")
    assert perturbed and calls["n"] == 2
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = _curve(tmp_path / "full" / "learning_curve.csv")
    rb = _curve(tmp_path / "killed" / "learning_curve.csv")
    assert [r["validation_nll"] for r in ra] == [r["validation_nll"] for r in rb]


def counted(function, calls, kill_at=None):
    """``function`` that counts its calls in ``calls["n"]`` and, if ``kill_at`` is given,
    raises KeyboardInterrupt (a kill) at that call instead of running it."""

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise KeyboardInterrupt("killed")
        return function(*args, **kwargs)

    return wrapper


def test_a_checkpoint_of_other_code_is_not_resumed(dataset, tmp_path, monkeypatch):
    """Same parameters and data, changed ddpd source: training starts over (epoch 0 is
    validated again) instead of continuing a model of the old code."""
    calls = {"n": 0}
    original = train_module.mean_nll
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls, kill_at=3))
    with pytest.raises(KeyboardInterrupt):
        train(dataset, PARAMS, tmp_path / "m", device="cpu")
    assert torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    calls["n"] = 0
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls))
    monkeypatch.setattr(train_module, "code_fingerprint", lambda: "0123456789abcdef")
    train(dataset, PARAMS, tmp_path / "m", device="cpu")
    assert calls["n"] == PARAMS["epochs"] + 1  # epoch 0 and every epoch: a fresh run
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    assert info["code"] == "0123456789abcdef"


def test_bad_params_are_named(dataset, tmp_path):
    with pytest.raises(ValueError, match="train: unknown key"):
        train(dataset, {"epoch": 3}, tmp_path / "x")
    with pytest.raises(ValueError, match="train.lr"):
        train(dataset, {"lr": -1.0}, tmp_path / "x")
    with pytest.raises(ValueError, match="model.dtype"):
        train(dataset, {"model": {"dtype": "float16"}}, tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        train(tmp_path / "missing.h5", {}, tmp_path / "x")


def test_equipartition_match_is_skipped_under_shear(dataset, tmp_path, monkeypatch):
    # the same frames read as a Lees-Edwards box: the flow would count as heat
    def sheared(path):
        data = load_dataset(path)
        return dataclasses.replace(data, box=dataclasses.replace(
            data.box, boundary="lees-edwards", shear_rate=0.01))

    monkeypatch.setattr(train_module, "load_dataset", sheared)
    train(dataset, dict(PARAMS, epochs=1, match_equipartition=True), tmp_path / "m",
          device="cpu")
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    assert "lees-edwards" in info["equipartition_match"]["skipped"]
    assert "validation_nll_after_match" not in info


def test_calibrated_start_and_equipartition_match(dataset, tmp_path):
    params = dict(PARAMS, epochs=2, match_equipartition=True, calibrate=True,
                  model=dict(PARAMS["model"], friction_scheme="midpoint"))
    train(dataset, params, tmp_path / "m", device="cpu")
    info = json.loads((tmp_path / "m" / "hparams.json").read_text())
    cal = info["calibration"]
    assert cal["gamma_dt"] > 0 and cal["kinetic_temperature"] > 0
    assert info["hparams"]["friction_scheme"] == "midpoint"
    match = info["equipartition_match"]
    # the saved model: k_B <T> equals the kinetic temperature of the training frames
    model = load_model(tmp_path / "m").double()
    data = load_dataset(dataset)
    snaps = snapshots(data, "train", model.cutoff, torch.float64)
    pick = torch.linspace(0, len(snaps) - 1, min(64, len(snaps))).round().long()
    kin, free, temp, count = 0.0, 0, 0.0, 0
    for s in snaps:  # the data's kinetic temperature: every training frame
        # every present particle of the frame, its mean removed: n - 1 free velocities
        v = s.v0 - s.v0.mean(0)
        kin += float(model.mass * (v * v).sum() / model.dim)
        free += len(s.v0) - 1
    with torch.no_grad():  # the model's temperature: up to 64 of them
        for k in pick:
            s = snaps[int(k)]
            terms = model.evaluate(s.v0, model.entropy(s.v0, s.pairs0), s.pairs0,
                                   with_divergence=False)
            temp += float(model.k_B * terms.T[s.idx0].sum())
            count += len(s.idx0)
    assert kin / free == pytest.approx(match["kinetic_temperature"], rel=1e-4)
    assert temp / count == pytest.approx(kin / free, rel=1e-3)
    with pytest.raises(ValueError, match="train.match_equipartition"):
        train(dataset, {"match_equipartition": 1}, tmp_path / "x")


def test_compiled_training_follows_the_eager_run_to_round_off(dataset, tmp_path):
    """train.compile: a run with the NLL through torch.compile (Inductor, dynamic shapes) is
    the eager run to round-off in float64. Epoch 0's validation NLL checks the no-grad graph;
    every later epoch follows Adam steps on the compiled gradients, so equal curves and final
    parameters check the training graph's loss and gradient (with the equipartition prior).
    The 23 snapshot pairs per split in batches of 3 give batches of 3 and 2 frames with pair
    counts that differ batch to batch. The compiled run also learns.

    One compiled run instead of separate loss/gradient checks: each Inductor graph costs
    minutes to build on 2 cores, and the run needs both graphs anyway."""
    params = dict(PARAMS, epochs=3, warmup_epochs=0, equipartition=0.5,
                  model=dict(PARAMS["model"], dtype="float64"))
    train(dataset, params, tmp_path / "eager", device="cpu")
    train(dataset, dict(params, compile=True), tmp_path / "compiled", device="cpu")
    eager = _curve(tmp_path / "eager" / "learning_curve.csv")
    compiled = _curve(tmp_path / "compiled" / "learning_curve.csv")
    assert [r["epoch"] for r in compiled] == [r["epoch"] for r in eager] == list("0123")
    val = [float(r["validation_nll"]) for r in compiled]
    assert val == pytest.approx([float(r["validation_nll"]) for r in eager], rel=1e-10)
    # epoch 0 has no training NLL
    assert [float(r["train_nll"]) for r in compiled[1:]] == pytest.approx(
        [float(r["train_nll"]) for r in eager[1:]], rel=1e-8)
    a = torch.load(tmp_path / "eager" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "compiled" / "model.pt", weights_only=True)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-8, atol=1e-10)
    assert min(val[1:]) < val[0]
    with pytest.raises(ValueError, match="train.compile"):
        train(dataset, {"compile": "yes"}, tmp_path / "x")


def test_bad_kind_or_model_section_is_refused_before_anything_is_written(dataset, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="train.kind: expected one of"):
        train(dataset, dict(PARAMS, kind="gnm"), out, device="cpu")
    with pytest.raises(ValueError, match="train.model: unknown key 'teacher_features'"):
        train(dataset, dict(PARAMS, kind="gnn"), out, device="cpu")
    assert not out.exists()


def test_compile_without_a_cxx_compiler_is_refused_before_anything_is_written(
        dataset, tmp_path, monkeypatch):
    """train.compile on a CPU with no C++ compiler on PATH: a clear error naming the key,
    and no output folder."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"train.compile: true needs a C\+\+ compiler.*g\+\+"):
        train(dataset, dict(PARAMS, compile=True), out, device="cpu")
    assert not out.exists()
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(ValueError, match="no-such-compiler is on PATH"):
        train(dataset, dict(PARAMS, compile=True), out, device="cpu")
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_follows_the_cpu_run_and_resumes_after_a_kill(
        dataset, tmp_path, monkeypatch):
    """device cuda: in float64 the learning curve is the CPU's to round-off growth, the files
    hold CPU tensors, a killed run resumes to the uninterrupted result; float32 learns."""
    params = dict(PARAMS, model=dict(PARAMS["model"], dtype="float64"))
    train(dataset, params, tmp_path / "cpu", device="cpu")
    train(dataset, params, tmp_path / "cuda", device="cuda")
    cpu_val = [float(r["validation_nll"]) for r in _curve(tmp_path / "cpu" / "learning_curve.csv")]
    gpu_val = [float(r["validation_nll"]) for r in _curve(tmp_path / "cuda" / "learning_curve.csv")]
    assert gpu_val[0] == pytest.approx(cpu_val[0], rel=1e-10)
    assert gpu_val == pytest.approx(cpu_val, rel=1e-6)
    state = torch.load(tmp_path / "cuda" / "model.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())
    reference = torch.load(tmp_path / "cpu" / "model.pt", weights_only=True)
    for k in reference:
        torch.testing.assert_close(state[k], reference[k], rtol=1e-5, atol=1e-8)
    ck = torch.load(tmp_path / "cuda" / "checkpoint.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in ck["model"].values())

    calls = {"n": 0}
    original = train_module.mean_nll
    # killed in the validation after epoch 3
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls, kill_at=4))
    with pytest.raises(KeyboardInterrupt):
        train(dataset, params, tmp_path / "killed", device="cuda")
    calls["n"] = 0
    monkeypatch.setattr(train_module, "mean_nll", counted(original, calls))
    train(dataset, params, tmp_path / "killed", device="cuda")
    assert calls["n"] == 2  # resumed: epochs 3 and 4 validated, not epoch 0 again
    resumed = [float(r["validation_nll"])
               for r in _curve(tmp_path / "killed" / "learning_curve.csv")]
    assert resumed == pytest.approx(gpu_val, rel=1e-9)

    train(dataset, dict(PARAMS, epochs=8), tmp_path / "f32", device="cuda")
    val32 = [float(r["validation_nll"]) for r in _curve(tmp_path / "f32" / "learning_curve.csv")]
    assert min(val32[1:]) < val32[0] - 0.3  # as test_outputs_and_learning on the CPU
