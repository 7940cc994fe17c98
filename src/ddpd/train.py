"""Training loop: per-particle Gaussian NLL, Adam, validation-based selection, checkpoints.

``train(dataset, params, out_dir, device)`` fits a model of kind ``params['kind']`` (see
:mod:`ddpd.model.api`) to the snapshot pairs of the dataset's train split
(shared/method.md §4), selects the epoch with the lowest validation NLL (validation split
only; the test split is never read here), stops early after ``patience`` epochs without
improvement or after ``max_wall_minutes``, and writes to ``out_dir``:

* ``model.pt``: state dict of the selected model, CPU tensors whatever the training device
  (``torch.load(weights_only=True)`` on any machine);
* ``hparams.json``: {"kind", "hparams", "dataset_stats", "train_params", "best_epoch",
  "stop_reason"}; ``stop_reason`` is "epochs", "patience" or "wall_time"; a model with an
  entropy teacher also gets ``entropy_labels`` (:mod:`ddpd.model.entropy_labels`: how fast
  the teacher's labels relax and how far the model lets S spread; a warning when a step of
  one frame cannot follow them; {"skipped": reason} where a validation run has too few
  labels). Training is
  deterministic on a CPU (same seed, data, code and threads: the same model bit for bit)
  unless it stops at the wall-time limit, whose epoch count depends on the machine's speed
  and load (a warning says so);
* ``learning_curve.csv``: epoch, wall_s, train_nll, validation_nll (per scored particle);
* ``checkpoint.pt``: the state after the last finished epoch (model, optimiser, scheduler,
  RNG, best state, curve). Restarting after a kill resumes from it, and because every epoch
  draws its order from a saved generator the result equals an uninterrupted run. It is
  resumed only when the parameters, the dataset statistics and the source of the ddpd
  package (``code``, a SHA-256 of its .py files) are those of the new run: a changed model
  never continues from a stale checkpoint (:func:`resume_key`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ddpd.coarse.dataset import collate, load_dataset, snapshots
from ddpd.heap import retain_freed_memory
from ddpd.io import atomic_path
from ddpd.model.api import model_class
from ddpd.model.diffusion_match import check_lag, match_diffusion
from ddpd.model.entropy_labels import entropy_label_check, has_entropy_teacher
from ddpd.model.equipartition import frames_kinetic_temperature
from ddpd.params import is_number, parse_params, require
from ddpd.toolchain import compiler, cxx_name


def code_fingerprint() -> str:
    """SHA-256 (hex, first 16 digits) of the ddpd package's Python sources, in path order."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainParams:
    """Section ``train``.

    Attributes:
        kind: model kind registered in ddpd.model.api.MODEL_KINDS ("metriplectic").
        model: the model's own section, checked by its kind's ``params_class`` (for
            "metriplectic": ddpd.model.params.ModelParams).
        epochs: maximum number of epochs (40).
        batch_frames: snapshot pairs (whole frames) per optimiser step (4).
        frames_per_epoch: snapshot pairs drawn per epoch; null = all (null).
        validation_frames: validation snapshot pairs used (evenly spaced); null = all (null).
        lr: Adam learning rate (3e-3).
        schedule: "cosine" (to lr/20 over ``epochs``) or "constant" ("cosine").
        warmup_epochs: staged training: the first epochs fit only the mean velocity
            increment (conservative force + friction drift, squared error); the Gaussian
            NLL follows. Patience does not count during warm-up (3).
        equipartition: weight of the equipartition prior in the training loss (see
            MetriplecticModel.nll); 0 = off. For equilibrium (rest) data; validation and model
            selection always use the plain NLL (0).
        calibrate: before training, set k_B and the friction scale from the training data
            (equipartition and the lag-dt velocity autocorrelation; see
            MetriplecticModel.calibrate); models without ``calibrate`` ignore it (true).
        match_equipartition: after training, scale k_B and the friction of the selected
            model so that k_B <T> (on 64 training frames) equals the kinetic temperature of
            all training frames exactly, keeping its noise
            (MetriplecticModel.match_equipartition). For data at rest: skipped in
            Lees-Edwards boxes, the reason recorded (false).
        match_diffusion: after training (and the equipartition match), scale the friction
            and noise of the selected model by one factor so that its rollouts from the
            training runs' first frames have the training runs' mean squared displacement at
            ``diffusion_lag`` frames (ddpd.model.diffusion_match); periodic boxes only, other
            boxes are skipped and the reason recorded; models without ``log_amp0`` ignore it
            (false).
        diffusion_lag: lag of that match, frames (50).
        diffusion_factors: the grid of friction factors tried, increasing
            ([0.5, 0.75, 1, 1.5, 2.25, 3.4, 5, 7.5]).
        match_rollout_temperature: with match_diffusion, also scale k_B (the noise, not the
            friction) so that the same rollouts' kinetic temperature equals the training
            frames', alternating with the friction factor for up to three scans
            (ddpd.model.diffusion_match) (false). The matched star melt otherwise rolls out
            7-8 % cold (bench/model.md).
        patience: stop after this many epochs without a better validation NLL (8).
        grad_clip: max gradient norm (10).
        seed: seed of the initialisation and the batch order (0).
        max_wall_minutes: stop (after the current epoch) past this wall time (15): a safety
            net; a run stopped by it is not reproducible on another machine or day.
        device: "auto" (CUDA if present), "cpu" or "cuda"; overridden by the argument.
        threads: torch CPU threads; null = leave as set by OMP_NUM_THREADS (null).
        compile: run the loss through torch.compile (Inductor; dynamic shapes, no graph
            break in MetriplecticModel.nll, one with model.friction_table where the lattice's
            temperature range is read): about 2x the particle-samples/s on a CPU
            (bench/model.md) for a one-off compilation of each loss variant (warm-up,
            training, validation; ~30-60 s on 2 cores, less with Inductor's on-disk cache).
            Needs a C++ compiler on CPU. Results equal the eager loss to round-off, not
            bit for bit (false).
    """

    kind: str = "metriplectic"
    model: dict = field(default_factory=dict)
    epochs: int = 40
    batch_frames: int = 4
    frames_per_epoch: int | None = None
    validation_frames: int | None = None
    lr: float = 3e-3
    schedule: str = "cosine"
    warmup_epochs: int = 3
    equipartition: float = 0.0
    calibrate: bool = True
    match_equipartition: bool = False
    match_diffusion: bool = False
    diffusion_lag: int = 50
    match_rollout_temperature: bool = False
    diffusion_factors: list = field(
        default_factory=lambda: [0.5, 0.75, 1.0, 1.5, 2.25, 3.4, 5.0, 7.5])
    patience: int = 8
    grad_clip: float = 10.0
    seed: int = 0
    max_wall_minutes: float = 15.0
    device: str = "auto"
    threads: int | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        s = "train"
        require(isinstance(self.model, dict), s, "model", "a mapping", self.model)
        # the model's own section, by its kind's dataclass: a key only another kind has
        # (e.g. kernel_table for gnn) is an error of the configuration, not of one job
        parse_params(model_class(self.kind).params_class, self.model, "train.model")
        for key in ("epochs", "batch_frames", "patience"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, s, key,
                  "a positive integer", value)
        for key in ("frames_per_epoch", "validation_frames", "threads"):
            value = getattr(self, key)
            if value is not None:
                require(isinstance(value, int) and value >= 1, s, key,
                      "a positive integer or null", value)
        require(isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0, s,
              "warmup_epochs", "an integer >= 0", self.warmup_epochs)
        require(is_number(self.equipartition) and self.equipartition >= 0, s, "equipartition",
              "a number >= 0", self.equipartition)
        require(isinstance(self.diffusion_lag, int) and not isinstance(self.diffusion_lag, bool)
                and self.diffusion_lag >= 1, s, "diffusion_lag", "a positive integer",
                self.diffusion_lag)
        factors = self.diffusion_factors
        require(isinstance(factors, list) and len(factors) >= 2
                and all(is_number(f) and f > 0 for f in factors)
                and all(factors[k] < factors[k + 1] for k in range(len(factors) - 1)), s,
                "diffusion_factors",
                "an increasing list of at least two positive numbers", factors)
        for key in ("calibrate", "match_equipartition", "match_diffusion",
                    "match_rollout_temperature", "compile"):
            require(isinstance(getattr(self, key), bool), s, key, "true or false",
                    getattr(self, key))
        require(self.match_diffusion or not self.match_rollout_temperature, s,
                "match_rollout_temperature", "false unless train.match_diffusion is true (it "
                "scans the diffusion match's rollouts)", self.match_rollout_temperature)
        require(is_number(self.lr) and self.lr > 0, s, "lr", "a positive number", self.lr)
        require(self.schedule in ("cosine", "constant"), s, "schedule",
              "'cosine' or 'constant'", self.schedule)
        require(is_number(self.grad_clip) and self.grad_clip > 0, s, "grad_clip",
              "a positive number", self.grad_clip)
        require(isinstance(self.seed, int), s, "seed", "an integer", self.seed)
        require(is_number(self.max_wall_minutes) and self.max_wall_minutes > 0, s,
              "max_wall_minutes", "a positive number", self.max_wall_minutes)
        require(self.device in ("auto", "cpu", "cuda"), s, "device", "'auto', 'cpu' or 'cuda'",
              self.device)


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return torch.device(device)


def mean_nll(model, snaps, dt: float, batch_frames: int, loss=None) -> float:
    """NLL per scored particle over ``snaps`` (no parameter gradients).

    ``loss``: the function to call instead of ``model.nll`` (its compiled form).
    """
    loss = model.nll if loss is None else loss
    total, count = 0.0, 0
    for start in range(0, len(snaps), batch_frames):
        batch = collate(snaps[start:start + batch_frames])
        with torch.no_grad():
            total += float(loss(batch, dt))
        count += len(batch.idx0)
    return total / max(count, 1)


def closest_approach(snaps: list) -> float:
    """The smallest pair distance r_ij in the snapshots (both frames of each pair)."""
    closest = math.inf
    for snap in snaps:
        for pairs in (snap.pairs0, snap.pairs1):
            if len(pairs.i):
                closest = min(closest, float(torch.sqrt((pairs.r * pairs.r).sum(-1)).min()))
    return closest


def resume_key(info: dict) -> str:
    """What a checkpoint's run must share with a new run to be resumed by it.

    Everything in ``info`` (kind, hyperparameters, dataset and its statistics, training
    parameters, code) but the calibration: its numbers are pair sums that a CUDA device
    reproduces only to round-off (atomic adds), and they follow from the rest.
    """
    return json.dumps({k: v for k, v in info.items() if k != "calibration"}, sort_keys=True)


def _on_cpu(state: dict) -> dict:
    """A state dict with its tensors copied to the CPU (files load on machines without CUDA)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _write_outputs(out_dir: Path, info: dict, best_state: dict, curve: list) -> None:
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(best_state, tmp)  # taken with _on_cpu
    with atomic_path(out_dir / "hparams.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    with atomic_path(out_dir / "learning_curve.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "wall_s", "train_nll", "validation_nll"])
        writer.writerows(curve)


def require_cxx_compiler(key: str = "train.compile") -> None:
    """``key`` (``train.compile``, ``rollout.compile``) on a CPU: Inductor builds C++
    kernels, so a compiler must be on PATH.

    Checked before anything is written; the compiler is :func:`ddpd.toolchain.cxx_name`.
    """
    if compiler() is None:
        raise ValueError(f"{key}: true needs a C++ compiler on the CPU (torch.compile "
                         f"builds C++ kernels), but no compiler named {cxx_name()} is on PATH; "
                         f"install one (conda: cxx-compiler) or set {key}: false")


def compiled_loss(model):
    """torch.compile of ``model.nll`` (dynamic shapes: frames differ in size), and of the
    friction table's interpolation where the model has one (it runs outside the loss's
    graph: :meth:`MetriplecticModel.compile_friction_table`).

    Inductor's deprecation notice about its own use of ``torch._prims_common.check`` is
    silenced; everything else it warns about is shown.
    """
    warnings.filterwarnings("ignore", message=r"`torch\._prims_common\.check` is deprecated",
                            category=FutureWarning)
    if getattr(model, "friction_table", 0):
        model.compile_friction_table()
    return torch.compile(model.nll, dynamic=True)


def train(dataset: Path, params: dict, out_dir: Path, device: str = "auto") -> None:
    """Fit a model to ``dataset`` (see the module docstring for outputs)."""
    p = parse_params(TrainParams, params, "train")
    dev = resolve_device(device if device != "auto" else p.device)
    if p.compile and dev.type == "cpu":
        require_cxx_compiler()
    if p.threads is not None:
        torch.set_num_threads(p.threads)
    retain_freed_memory()  # steps reuse their activations' memory (ddpd.heap)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(Path(dataset))
    if p.match_diffusion and data.box.boundary == "periodic":
        check_lag(data, p.diffusion_lag)
    stats = data.stats
    dt = float(stats["dt"])

    torch.manual_seed(p.seed)
    model = model_class(p.kind).build(stats, p.model).to(dev)
    dtype = next(model.parameters()).dtype
    cutoff = float(model.hparams.get("cutoff", stats["cutoff"]))
    train_snaps = snapshots(data, "train", cutoff, dtype, str(dev))
    val_snaps = snapshots(data, "validation", cutoff, dtype, str(dev))
    if not train_snaps or not val_snaps:
        raise ValueError(f"{dataset}: train and validation splits need scored snapshot pairs")
    if p.validation_frames is not None and len(val_snaps) > p.validation_frames:
        pick = torch.linspace(0, len(val_snaps) - 1, p.validation_frames).round().long()
        val_snaps = [val_snaps[int(k)] for k in pick]

    if hasattr(model, "set_core_radius"):  # r0 of the pair core prior (train.model)
        r0 = closest_approach(train_snaps)
        if 0 < r0 < math.inf:
            model.set_core_radius(r0)
        elif model.core_repulsion > 0:
            raise ValueError(f"{dataset}: train.model.core_repulsion needs the closest approach "
                             f"of the training pairs for its radius, got {r0} (no pairs, or "
                             "particles on top of each other)")
    calibration = None
    if p.calibrate and hasattr(model, "calibrate"):
        pick = torch.linspace(0, len(train_snaps) - 1, min(32, len(train_snaps))).round().long()
        calibration = model.calibrate([train_snaps[int(k)] for k in pick], dt)
    optimiser = torch.optim.Adam(model.parameters(), lr=p.lr)
    if p.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, p.epochs,
                                                               eta_min=p.lr / 20)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _: 1.0)
    order_gen = torch.Generator().manual_seed(p.seed)
    info = dict(kind=p.kind, hparams=model.hparams, dataset_stats=stats,
                train_params=dataclasses.asdict(p), dataset=str(dataset), calibration=calibration,
                code=code_fingerprint())

    epoch0, best, bad, curve, wall0 = 0, math.inf, 0, [], 0.0
    best_state = _on_cpu(model.state_dict())
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file():
        # on the CPU: the generator states must stay CPU tensors (the model's and the
        # optimiser's tensors move to the model's device as they are loaded)
        ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
        saved = json.loads(ck["info"])
        if resume_key(saved) == resume_key(info):
            info["calibration"] = saved.get("calibration")  # the resumed run's start
            model.load_state_dict(ck["model"])
            optimiser.load_state_dict(ck["optimiser"])
            scheduler.load_state_dict(ck["scheduler"])
            order_gen.set_state(ck["order_rng"])
            torch.set_rng_state(ck["torch_rng"])
            epoch0, best, bad, wall0 = ck["epoch"], ck["best"], ck["bad"], ck["wall_s"]
            best_state, curve = ck["best_state"], [list(r) for r in ck["curve"]]
            tqdm.write(f"resuming from {checkpoint} after epoch {epoch0}")
    loss_fn = compiled_loss(model) if p.compile else model.nll
    if epoch0 == 0:
        curve.append([0, 0.0, math.nan, mean_nll(model, val_snaps, dt, p.batch_frames,
                                                 loss_fn)])
        best = curve[0][3]

    start = time.perf_counter() - wall0
    n_per_epoch = min(p.frames_per_epoch or len(train_snaps), len(train_snaps))
    stopped = bad >= p.patience
    stop_reason = "patience" if stopped else "epochs"
    for epoch in tqdm(range(epoch0 + 1, p.epochs + 1), desc="train", initial=epoch0,
                      total=p.epochs, disable=stopped):
        if stopped:
            break
        order = torch.randperm(len(train_snaps), generator=order_gen)[:n_per_epoch]
        total, count = 0.0, 0
        for b in range(0, n_per_epoch, p.batch_frames):
            batch = collate([train_snaps[int(k)] for k in order[b:b + p.batch_frames]])
            n_scored = len(batch.idx0)
            extra = {"equipartition": p.equipartition} if p.equipartition > 0 else {}
            loss = loss_fn(batch, dt, mean_only=epoch <= p.warmup_epochs, **extra) / n_scored
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training NLL became {float(loss)} at epoch {epoch}")
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
            optimiser.step()
            total += loss.item() * n_scored
            count += n_scored
        scheduler.step()
        val = mean_nll(model, val_snaps, dt, p.batch_frames, loss_fn)
        wall = time.perf_counter() - start
        curve.append([epoch, round(wall, 3), total / count, val])
        if val < best:
            best, bad = val, 0
            best_state = _on_cpu(model.state_dict())
        elif epoch > p.warmup_epochs:
            bad += 1
        tqdm.write(f"epoch {epoch}: train {total / count:.4f} validation {val:.4f}")
        with atomic_path(checkpoint) as tmp:
            torch.save(dict(
                info=json.dumps(info, sort_keys=True), model=_on_cpu(model.state_dict()),
                optimiser=optimiser.state_dict(), scheduler=scheduler.state_dict(),
                order_rng=order_gen.get_state(), torch_rng=torch.get_rng_state(),
                epoch=epoch, best=best, bad=bad, wall_s=wall, best_state=best_state,
                curve=curve), tmp)
        if bad >= p.patience:
            stop_reason = "patience"
            break
        if wall > 60 * p.max_wall_minutes and epoch < p.epochs:
            stop_reason = "wall_time"
            warnings.warn(
                f"{out_dir}: training stopped at the wall-time limit (train.max_wall_minutes "
                f"= {p.max_wall_minutes:g}) after epoch {epoch} of {p.epochs}: the result "
                "depends on this machine's speed and load", stacklevel=2)
            break
    info["best_validation_nll"] = best
    info["best_epoch"] = int(min(curve, key=lambda r: r[3])[0])
    info["stop_reason"] = stop_reason
    if p.match_equipartition and hasattr(model, "match_equipartition"):
        if data.box.boundary == "lees-edwards":
            info["equipartition_match"] = dict(
                skipped="boundary 'lees-edwards': the peculiar velocities contain the shear "
                        "flow, so their kinetic temperature is not the thermal one")
        else:
            model.load_state_dict(best_state)
            # the model's k_B <T> on 64 frames, the data's kinetic temperature on all of them
            # (one frame's scatters by sqrt(2 / (D (N - 1))): 1.1% over 64 frames of 128)
            pick = torch.linspace(0, len(train_snaps) - 1,
                                  min(64, len(train_snaps))).round().long()
            kinetic = frames_kinetic_temperature(((s.v0, s.frame0) for s in train_snaps),
                                                 float(model.mass))
            info["equipartition_match"] = model.match_equipartition(
                [train_snaps[int(k)] for k in pick], kinetic)
            best_state = _on_cpu(model.state_dict())
            info["validation_nll_after_match"] = mean_nll(model, val_snaps, dt,
                                                          p.batch_frames)
    if p.match_diffusion and hasattr(model, "log_amp0"):
        model.load_state_dict(best_state)
        info["diffusion_match"] = match_diffusion(model, data, p.diffusion_lag,
                                                  p.diffusion_factors, seed=p.seed,
                                                  temperature=p.match_rollout_temperature)
        best_state = _on_cpu(model.state_dict())
        if "factor" in info["diffusion_match"]:
            info["validation_nll_after_diffusion_match"] = mean_nll(model, val_snaps, dt,
                                                                    p.batch_frames)
    if has_entropy_teacher(model):
        # can a step of one frame follow the teacher's labels? (ddpd.model.entropy_labels)
        model.load_state_dict(best_state)
        try:
            info["entropy_labels"], problems = entropy_label_check(model, data)
        except ValueError as exc:  # too few labels (e.g. a small field of view): no check
            info["entropy_labels"], problems = {"skipped": str(exc)}, []
        for problem in problems:
            warnings.warn(f"{out_dir}: {problem}", stacklevel=2)
    _write_outputs(out_dir, info, best_state, curve)
