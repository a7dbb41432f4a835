"""Fit and evaluate a model (HadamRNN or a baseline) on a data set: the whole procedure, top to bottom.

A run directory holds ``config.yaml`` (resolved, with the data directory it read), ``metrics.jsonl``/
``.csv``, ``curves.png``, ``checkpoints/last.safetensors`` (everything needed to resume: model,
optimizer, scheduler, RNG states, position in the epoch, running sums) and
``checkpoints/best.safetensors`` (best validation metric), and at the end ``results.json``.
Shuffling uses its own generator seeded by the epoch and ``optim.order_seed`` (else ``optim.seed``), so
a resumed run replays exactly the batches an uninterrupted run would have seen. Ctrl-C stops at the
end of the current step and writes a checkpoint first.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
import yaml
from tqdm import tqdm

from ..data import DATASETS, Splits, TaskInfo, baseline, data_dir as resolve_data_dir, load_data, task_info
from .. import models, pretrained
from ..models.hadamrnn import HadamRNN
from ..atomic import atomic_write_bytes
from ..display import format_metric
from ..size import model_size_bits, size_rows
from .checkpoint import CHECKPOINT_SUFFIX, CheckpointError, load_checkpoint, remove_stale_temporaries, save_checkpoint
from .config import ExperimentConfig, from_dict
from .distributed import Ranks, join, leave
from .lock import RunLock
from .metrics import MetricsLog
from .tensorboard import TensorBoardLog

__all__ = ["fit", "evaluate", "TrainingDiverged", "build_model", "load_splits", "load_task_info", "load_trained", "RunResult",
           "checkpoint_path", "training_bytes"]

# Training samples the fixed-point scales of ``model.state_bits`` are chosen on.
CALIBRATION_SAMPLES = 1024

# Off a terminal (CI, nohup, a pipe), progress is one plain line this often instead of a redrawn bar.
PLAIN_PROGRESS_SECONDS = 30.0


def checkpoint_path(run_dir: str | Path, which: str = "last") -> Path:
    """``run_dir/checkpoints/{last,best}.safetensors``."""
    return Path(run_dir) / "checkpoints" / f"{which}{CHECKPOINT_SUFFIX}"


def load_splits(config: ExperimentConfig, data_dir: str | Path | None = None, download: bool = False) -> Splits:
    """The configured data set, read from ``data_dir``, else the run's own ``data.dir``, else the default."""
    return load_data(config.data, data_dir or config.data.dir, download)


def _with_resolved_data(config: ExperimentConfig, data_dir: str | Path | None) -> ExperimentConfig:
    """``config`` naming the absolute data directory (data sets read from a data directory) and its
    own files' paths, so that ``eval``, ``export`` and ``--resume`` of the run find the same data from
    anywhere."""
    d = config.data
    dataset = DATASETS[d.name]
    directory = str(resolve_data_dir(data_dir or d.dir).resolve()) if dataset.files else d.dir
    paths = {key: str(Path(getattr(d, key)).resolve()) for key in dataset.paths
             if getattr(d, key) is not None and getattr(d, key) not in dataset.keywords}
    return replace(config, data=replace(d, dir=directory, **paths))


def load_task_info(config: ExperimentConfig, data_dir: str | Path | None = None) -> TaskInfo:
    """The data set's :class:`TaskInfo`, without loading its samples where it can (your own files,
    npz and time series, are read whole)."""
    return task_info(config.data, data_dir)


def build_model(config: ExperimentConfig, info: TaskInfo) -> nn.Module:
    """The configured model family (``model.name``) shaped for the data set ``info``."""
    m = config.model
    if info.vocab_size is not None:
        if m.embedding_dim is None:
            raise ValueError(f"data set {info.name!r} has token inputs: set model.embedding_dim")
        input_size = m.embedding_dim
    else:
        input_size = info.input_size
    check_memory(model_bytes(config, info), f"building this model ({m.name}, hidden size {m.hidden_size}, {input_size} "
                 f"inputs, {info.output_size} outputs, vocabulary {info.vocab_size})",
                 "reduce model.hidden_size (or check that the data's labels and ids are what you expect)")
    return models.build_model(m, models.Task(input_size, info.output_size, info.vocab_size, info.readout))


def _flips(model: nn.Module) -> int | None:
    """Sign flips of HadamRNN's ``W`` since the epoch began (None for other families)."""
    return model.recurrence.flips(model.latent) if isinstance(model, HadamRNN) else None


def _predicted(info: TaskInfo, logits: torch.Tensor) -> torch.Tensor:
    """The predicted classes, flattened like the targets."""
    return (logits.squeeze(-1) > 0).long().reshape(-1) if info.loss == "bce" else logits.argmax(-1).reshape(-1)


def _loss_and_hits(info: TaskInfo, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Mean loss, number of correct predictions, number of predictions."""
    if info.loss == "bce":
        loss = F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.to(logits.dtype))
    else:
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    return loss, int((_predicted(info, logits) == y.reshape(-1)).sum()), y.numel()


def macro_f1(counts: torch.Tensor) -> float:
    """Mean over classes of ``F1 = 2 TP / (2 TP + FP + FN)`` from per-class ``counts`` ``(3, C)``: true
    positives, samples of the class, predictions of the class (linear in ``C``, unlike a confusion
    matrix), over the classes that occur or are predicted."""
    true_positive, truth, predicted = counts.double()
    occurring = truth + predicted  # 2 TP + FP + FN
    f1 = 2 * true_positive / occurring.clamp(min=1)
    return float(f1[occurring > 0].mean())


def class_counts(y: torch.Tensor, predicted: torch.Tensor, classes: int) -> torch.Tensor:
    """``(3, classes)``: per class, the true positives, the samples of it in ``y`` and the predictions of it."""
    y, predicted = y.reshape(-1).cpu(), predicted.reshape(-1).cpu()
    return torch.stack([torch.bincount(y[y == predicted], minlength=classes), torch.bincount(y, minlength=classes),
                        torch.bincount(predicted, minlength=classes)])


def _metric(info: TaskInfo, loss: float, accuracy: float) -> float:
    return loss if info.metric == "cross_entropy" else accuracy


@torch.no_grad()
def evaluate(model: nn.Module, dataset, info: TaskInfo, batch_size: int, device: str = "cpu",
             ranks: Ranks = Ranks()) -> dict:
    """Mean loss, accuracy, macro-F1, the task's metric and the ``class_counts`` behind macro-F1 (per
    class: true positives, samples, predictions) over ``dataset`` (several processes: each
    takes every ``world``-th batch and the sums are reduced, so every process gets the whole set's
    figures)."""
    model.eval()
    classes = 2 if info.loss == "bce" else info.output_size
    loss_sum, hits, count, counts = 0.0, 0, 0, torch.zeros(3, classes, dtype=torch.int64)
    for start in range(ranks.rank * batch_size, len(dataset), ranks.world * batch_size):
        x, y = dataset.batch(torch.arange(start, min(start + batch_size, len(dataset))))
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss, batch_hits, batch_count = _loss_and_hits(info, logits, y)
        loss_sum += float(loss) * batch_count
        hits, count = hits + batch_hits, count + batch_count
        counts += class_counts(y, _predicted(info, logits), classes)
    model.train()
    loss_sum, hits, count, *cells = ranks.sum([loss_sum, hits, count, *counts.reshape(-1).tolist()])
    loss, accuracy = loss_sum / count, hits / count
    counts = torch.tensor(cells).reshape(3, classes)
    return {"loss": loss, "accuracy": accuracy, "metric": _metric(info, loss, accuracy),
            "macro_f1": macro_f1(counts), "class_counts": counts.tolist()}


@dataclass
class RunResult:
    """``completed``, or ``stopped`` ("interrupted" by Ctrl-C, or "stopped" by ``stop_after_steps``)
    with the position of the checkpoint it left: ``epoch`` epochs done plus ``batch`` of ``batches`` steps."""

    completed: bool
    results: dict | None
    run_dir: Path
    stopped: str | None = None
    epoch: int = 0
    batch: int = 0
    batches: int = 0


def _gradient_norm(model: nn.Module) -> float:
    """The 2-norm of all gradients, in float64: in float32 the squares overflow from 1.8e19 on, where
    every gradient is still finite."""
    norms = [torch.linalg.vector_norm(p.grad, dtype=torch.float64) for p in model.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


class TrainingDiverged(ValueError):
    """The loss or the gradient became NaN or infinite; no step was taken with it."""


def _divergence(run_dir: Path, epoch: int, batch: int, global_step: int, loss: float, gradient_norm: float,
                lr: float) -> str:
    """What stopped the run, where, and what is left on disk."""
    last = checkpoint_path(run_dir, "last")
    kept = (f"the last checkpoint ({last}, written before this step) is intact and resumable, but a resume replays "
            f"the same batches" if last.is_file() else "no checkpoint had been written yet")
    return (f"training diverged at epoch {epoch + 1}, step {batch + 1} (global step {global_step + 1}): the loss is "
            f"{loss} and the gradient norm {gradient_norm}; the step was not taken. {kept}. Train again with a "
            f"lower optim.lr (now {lr:g})")


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"optim.device={name!r} but no CUDA device is available; use optim.device=cpu")
    return name


# Peak bytes per n² of building a model of each family (its dense n × n matrices and their temporaries),
# measured with ru_maxrss at n = 4096; and its recurrent parameters per n², which Adam keeps 4 copies of.
STARTUP_BYTES_PER_N2 = {"hadamrnn": 26, "ornn": 29, "ornn-quantized": 29, "lstm": 16, "gru": 12, "fastgrnn": 5}
RECURRENT_PARAMETERS_PER_N2 = {"hadamrnn": 0, "ornn": 1, "ornn-quantized": 1, "lstm": 4, "gru": 3, "fastgrnn": 1}


def model_bytes(config: ExperimentConfig, info: TaskInfo) -> int:
    """Estimated peak memory (bytes) of building the model: the family's dense ``n × n`` matrices (measured
    constants above) and its float32 input, output and embedding matrices."""
    m = config.model
    n, classes = m.hidden_size, info.output_size
    d = (m.embedding_dim or 1) if info.vocab_size is not None else (info.input_size or 1)
    return STARTUP_BYTES_PER_N2[m.name] * n * n + 4 * (n * d + 2 * n + classes * n + classes + (info.vocab_size or 0) * d)


def training_bytes(config: ExperimentConfig, info: TaskInfo, steps: int) -> int:
    """A rough lower estimate of the memory (bytes) training needs, from the configuration: building
    the model (:func:`model_bytes`), or float32 parameters with their gradient and two Adam moments
    plus the ``n × n`` int8 Hadamard basis, whichever is more; a batch of inputs and, many-to-many, the relu
    pattern and logits of every step; the step loop (``engine: loop``, and the baselines) also keeps
    ~3 float32 states per step for autograd."""
    m, batch = config.model, config.data.batch_size
    n, classes = m.hidden_size, info.output_size
    d = (m.embedding_dim or 1) if info.vocab_size is not None else (info.input_size or 1)
    parameters = n * d + 2 * n + classes * n + classes + (info.vocab_size or 0) * d
    parameters += RECURRENT_PARAMETERS_PER_N2[m.name] * n * n
    step_loop = m.name != "hadamrnn" or m.engine == "loop"  # autograd keeps every step's states
    per_step = 4 * d + (n + 8 * classes if info.readout == "all" else 0) + (12 * n if step_loop else 0)
    resident = max(model_bytes(config, info), 16 * parameters + (n * n if m.name == "hadamrnn" else 0))
    return resident + batch * steps * per_step


def check_memory(needed: int, what: str, advice: str) -> None:
    """Refuse, before allocating anything big, work whose estimate exceeds 80% of the machine's memory."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > 0.8 * physical:
        raise ValueError(f"{what} needs at least ~{needed / 2**30:.1f} GiB, more than 80% of this machine's "
                         f"{physical / 2**30:.1f} GiB; {advice}")


def _check_training_memory(config: ExperimentConfig, info: TaskInfo, train) -> None:
    steps = getattr(train, "length", None) or int(train.batch(torch.arange(1))[0].shape[1])
    check_memory(training_bytes(config, info, steps),
                 f"training this configuration (model.hidden_size={config.model.hidden_size}, data.batch_size="
                 f"{config.data.batch_size}, {info.output_size} outputs, {steps} steps per sequence)",
                 "reduce data.batch_size, model.hidden_size or the sequence length")


class _Progress:
    """tqdm's bar on a terminal; elsewhere one plain line every ``PLAIN_PROGRESS_SECONDS``."""

    def __init__(self, start: int, total: int, description: str, enabled: bool) -> None:
        self.description, self.total = description, total
        terminal = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=start, desc=description, unit="step", dynamic_ncols=True) if terminal else None
        self.plain = enabled and not terminal
        self.said = time.perf_counter()

    def update(self, step: int, values: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(values, refresh=False)
        elif self.plain and time.perf_counter() - self.said >= PLAIN_PROGRESS_SECONDS:
            print(f"{self.description}: step {step}/{self.total}, " + ", ".join(f"{k} {v}" for k, v in values.items()),
                  file=sys.stderr, flush=True)
            self.said = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _StopRequest:
    """The first Ctrl-C (SIGINT) asks the loop to stop after the current step, once it has written a
    checkpoint; a second one interrupts at once. Only in the main thread, where signals arrive."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("\nstopping after this step, once a checkpoint is written (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def fit(config: ExperimentConfig | None, run_dir: str | Path, data_dir: str | Path | None = None,
        resume: bool = False, download: bool = False, progress: bool = True,
        stop_after_steps: int | None = None, epochs: int | None = None, command: str | None = None,
        on_epoch: Callable[[dict], bool] | None = None, tensorboard: bool = False) -> RunResult:
    """Train as ``config`` says, writing everything into ``run_dir``.

    ``resume``: continue from ``run_dir/checkpoints/last.safetensors`` with the configuration saved
    there (``data_dir``, when given, replaces the data directory it names). ``epochs`` (with
    ``resume``): train up to this many epochs in all instead of the saved ``optim.epochs``: more
    extends a run, finished or not, as if it had been started with that number (the schedule and
    the data order depend on the epoch only); fewer ends it early, but not before an epoch it has
    begun.
    ``stop_after_steps``: stop (as if killed) right after the checkpoint of that global step; for
    testing resumption. ``on_epoch``: called with each epoch's record of ``metrics.jsonl`` once its
    checkpoint is written; returning True stops the run there (``stopped="pruned"``: a sweep's
    pruner). ``command``: the command line that started the run, kept in ``results.json`` (a
    resumed run keeps the first one and adds its own). ``tensorboard``: also write TensorBoard event
    files into ``run_dir/tensorboard`` (:mod:`hadamrnn.train.tensorboard`).
    """
    run_dir = Path(run_dir)
    # One run per directory. Under torchrun the first process holds the lock for all of them.
    with RunLock(run_dir) if os.environ.get("RANK", "0") == "0" else nullcontext():
        return _fit(config, run_dir, data_dir, resume, download, progress, stop_after_steps, epochs, command, on_epoch,
                    tensorboard)


def _fit(config: ExperimentConfig | None, run_dir: Path, data_dir: str | Path | None, resume: bool, download: bool,
         progress: bool, stop_after_steps: int | None, epochs: int | None, command: str | None,
         on_epoch: Callable[[dict], bool] | None, tensorboard: bool) -> RunResult:
    """:func:`fit` once this process holds the run directory."""
    last_path = checkpoint_path(run_dir, "last")
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(last_path, required=("config", "model", "optimizer", "scheduler", "rng", "state"))
        config = from_dict(checkpoint["config"])
        if epochs is not None:
            begun = checkpoint["state"]["epoch"] + (1 if checkpoint["state"]["batch"] > 0 else 0)
            if epochs < max(begun, 1):
                raise ValueError(f"optim.epochs={epochs}: this run has {'begun' if begun > checkpoint['state']['epoch'] else 'finished'} "
                                 f"epoch {begun}; choose at least {max(begun, 1)}")
            config = replace(config, optim=replace(config.optim, epochs=epochs))
    elif epochs is not None:
        raise ValueError("epochs overrides the configuration of a resumed run only; set optim.epochs in the config")
    elif last_path.exists() or last_path.with_suffix(".pt").exists():
        raise ValueError(f"{run_dir} already holds a run (checkpoints/last); pass --resume to continue it "
                         f"or choose another --out")
    config = _with_resolved_data(config, data_dir)
    ranks, device = join(_device(config.optim.device))
    try:
        prepare = DATASETS[config.data.name].prepare
        if checkpoint is None and prepare is not None:
            config = replace(config, data=prepare(config.data, run_dir, ranks.main))
            ranks.sum([0.0])  # a barrier: the first process has written what the others read
        return _train(config, checkpoint, run_dir, ranks, device, progress and ranks.main, download, stop_after_steps,
                      command, on_epoch, tensorboard)
    finally:
        leave(ranks)


def _train(config: ExperimentConfig, checkpoint: dict | None, run_dir: Path, ranks: Ranks, device: str,
           progress: bool, download: bool, stop_after_steps: int | None, command: str | None,
           on_epoch: Callable[[dict], bool] | None, tensorboard: bool) -> RunResult:
    """:func:`fit` once the configuration is resolved and this process has joined the others."""
    opt = config.optim
    last_path, best_path = checkpoint_path(run_dir, "last"), checkpoint_path(run_dir, "best")
    splits = load_splits(config, download=download)
    info = splits.info
    _check_training_memory(config, info, splits.train)
    torch.manual_seed(opt.seed)
    model = build_model(config, info).to(device)
    # Only now that the config, the data and the model are known good does the run directory get written.
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temporaries(folder)
        atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    if opt.init_from is not None and checkpoint is None:
        _start_from(model, opt.init_from, device)
    latent = model.latent if isinstance(model, HadamRNN) else None
    if latent is None and opt.latent_lr is not None:
        raise ValueError(f"optim.latent_lr applies to the latent of hadamrnn's W; model.name is {config.model.name!r}: "
                         f"set optim.recurrent_lr, every family's name for it")
    if opt.latent_lr is not None and opt.recurrent_lr is not None:
        raise ValueError("optim.latent_lr and optim.recurrent_lr name the same learning rate; set one")
    recurrent_lr = opt.recurrent_lr if opt.recurrent_lr is not None else opt.latent_lr
    recurrent = model.recurrent_parameters()
    # HadamRNN's latent always has a group of its own, as in earlier checkpoints; the others only when set.
    separate = latent is not None or recurrent_lr is not None
    groups = [{"params": [p for p in model.parameters() if not (separate and any(p is q for q in recurrent))]}]
    if separate:
        groups.append({"params": recurrent, "lr": opt.lr if recurrent_lr is None else recurrent_lr})
    optimizer = torch.optim.Adam(groups, lr=opt.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=opt.gamma)
    log = MetricsLog(run_dir)
    state = {"epoch": 0, "batch": 0, "global_step": 0, "best_val": None, "seconds": 0.0,
             "loss_sum": 0.0, "hits": 0, "count": 0}
    if checkpoint is not None:
        stored = checkpoint.get("info") or {}
        try:
            before = TaskInfo.from_dict(stored) if stored else info
        except ValueError as error:
            raise CheckpointError(f"{last_path}: its task description is invalid ({error})") from None
        # the fields it stored (older runs stored fewer), compared as read back
        changed = sorted(key for key in stored if getattr(before, key) != getattr(info, key))
        if changed:  # e.g. a data file edited since: the model would go on with other inputs or classes
            raise ValueError(f"{run_dir}: the data set's {', '.join(changed)} changed since this run started (its "
                             f"files were edited or replaced); restore them to resume, or start a new run")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        state = checkpoint["state"]
        if ranks.main:
            log.truncate(state["epoch"])
    state["commands"] = state.get("commands", []) + [command]  # the first, then each resume (None: not known)
    if ranks.world > 1 and config.data.batch_size < ranks.world:
        raise ValueError(f"data.batch_size {config.data.batch_size} is the global batch, split over {ranks.world} "
                         f"processes: it must be at least {ranks.world}")
    board = TensorBoardLog(run_dir, state["global_step"]) if tensorboard and ranks.main else None
    net = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)
           if ranks.world > 1 else model)

    def payload() -> dict:
        return {"config": config.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "state": dict(state),
                "info": info.__dict__}

    train, batch_size = splits.train, config.data.batch_size
    batches = math.ceil(len(train) / batch_size)
    if opt.max_steps_per_epoch is not None:
        batches = min(batches, opt.max_steps_per_epoch)
    started = time.perf_counter() - state["seconds"]
    last_save = time.perf_counter()

    stop_everywhere = False  # a Ctrl-C seen by any process, agreed on at every step
    pruned = False  # on_epoch asked to stop

    def stop_reason() -> str | None:
        if stop_everywhere or (ranks.world == 1 and stop.requested):
            return "interrupted"
        if pruned:
            return "pruned"
        return "stopped" if stop_after_steps is not None and state["global_step"] >= stop_after_steps else None

    def stopped() -> RunResult:
        if state["batch"] > 0 and ranks.main:  # mid-epoch; an epoch's end has written its checkpoint already
            state["seconds"] = time.perf_counter() - started
            save_checkpoint(last_path, payload())
        if ranks.main:
            log.plot()
        if board is not None:
            board.close()
        ranks.barrier()
        return RunResult(False, None, run_dir, stop_reason(), state["epoch"], state["batch"], batches)

    fixed_point = isinstance(model, HadamRNN) and model.fixed_point is not None
    if fixed_point and not bool(model.fixed_point.calibrated):
        _calibrate(model, train, info, batch_size, device)

    with _StopRequest() as stop:
        if progress:  # said once the handler is in place: from here on, Ctrl-C does what this says
            if checkpoint is not None:
                done = state["seconds"]
                print(f"resuming {run_dir}: {state['epoch']} of {opt.epochs} epochs done, continuing epoch "
                      f"{min(state['epoch'] + 1, opt.epochs)} at step {state['batch'] + 1} of {batches} (global step "
                      f"{state['global_step'] + 1}; {done:.0f} s trained so far)", flush=True)
            print(f"training {info.name}: epochs {state['epoch'] + 1}-{opt.epochs} of {batches} steps; Ctrl-C "
                  f"stops after the current step and writes a checkpoint", flush=True)
        order_seed = opt.seed if opt.order_seed is None else opt.order_seed
        for epoch in range(state["epoch"], opt.epochs):
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(order_seed * 100_003 + epoch))
            if state["batch"] == 0 and latent is not None:
                model.recurrence.set_reference(latent)
            bar = _Progress(state["batch"], batches, f"epoch {epoch + 1}/{opt.epochs}", progress)
            for k in range(state["batch"], batches):
                batch = order[k * batch_size:(k + 1) * batch_size]
                mine = ranks.share(batch)  # the global batch's share of this process (all of it, alone)
                weight = len(mine) * ranks.world / len(batch)  # DDP averages: weigh by the share's size
                if len(mine) == 0:  # a last batch smaller than the number of processes: take part, add nothing
                    mine, weight = batch[:1], 0.0
                x, y = train.batch(mine)
                x, y = x.to(device), y.to(device)
                loss, hits, count = _loss_and_hits(info, net(x), y)
                optimizer.zero_grad(set_to_none=True)
                (loss * weight).backward()  # weight 1 for a single process
                added = [loss.item() * count, hits, count] if weight > 0 else [0.0, 0, 0]
                loss_total, hits, count, stops = ranks.sum(added + [float(stop.requested)])
                # Every process sees the summed loss and the same all-reduced gradients: all stop together.
                gradient_norm = _gradient_norm(model)
                if not (math.isfinite(loss_total) and math.isfinite(gradient_norm)):
                    bar.close()
                    raise TrainingDiverged(_divergence(run_dir, epoch, k, state["global_step"], loss_total,
                                                       gradient_norm, config.optim.lr))
                if opt.clip_norm is not None and gradient_norm > opt.clip_norm:
                    # Scaled by the float64 norm (the same on every process); clip_grad_norm_'s float32 norm
                    # overflows to infinity for large finite gradients and would zero them.
                    for parameter in model.parameters():
                        if parameter.grad is not None:
                            parameter.grad.mul_(opt.clip_norm / gradient_norm)
                optimizer.step()
                stop_everywhere = stop_everywhere or stops > 0
                state["loss_sum"] += loss_total
                state["hits"] += int(hits)
                state["count"] += int(count)
                state["batch"], state["global_step"] = k + 1, state["global_step"] + 1
                train_loss = state["loss_sum"] / state["count"]
                train_metric = _metric(info, train_loss, state["hits"] / state["count"])
                flips = {"flips": _flips(model)} if latent is not None else {}
                bar.update(k + 1, {"loss": format_metric(train_loss), info.metric: format_metric(train_metric),
                                   "lr": f"{scheduler.get_last_lr()[0]:.2e}", **flips})
                if board is not None:
                    board.step(state["global_step"], {"batch_loss": loss_total / max(count, 1), "train_loss": train_loss,
                                                      f"train_{info.metric}": train_metric,
                                                      "lr": scheduler.get_last_lr()[0], "gradient_norm": gradient_norm,
                                                      **flips})
                if stop_reason() and state["batch"] < batches:  # at an epoch's last step, the epoch end stops
                    bar.close()
                    return stopped()
                if (time.perf_counter() - last_save >= opt.checkpoint_minutes * 60 and state["batch"] < batches
                        and ranks.main):
                    state["seconds"] = time.perf_counter() - started
                    save_checkpoint(last_path, payload())
                    last_save = time.perf_counter()
            bar.close()
            if fixed_point:  # the scales follow the weights
                _calibrate(model, train, info, batch_size, device)

            val = evaluate(model, splits.val, info, batch_size, device, ranks)
            train_loss = state["loss_sum"] / state["count"]
            record = {"epoch": epoch + 1, "step": state["global_step"], "train_loss": train_loss,
                      "train_metric": _metric(info, train_loss, state["hits"] / state["count"]),
                      "val_loss": val["loss"], "val_metric": val["metric"], "metric_name": info.metric,
                      "lr": scheduler.get_last_lr()[0], "flips": _flips(model),
                      **({"fx": int(model.fixed_point.fx), "fh": int(model.fixed_point.fh)} if fixed_point else {}),
                      "seconds": time.perf_counter() - started}
            scheduler.step()
            better = state["best_val"] is None or (val["metric"] > state["best_val"] if info.higher_is_better
                                                   else val["metric"] < state["best_val"])
            if better:
                state["best_val"] = val["metric"]
            if better and ranks.main:
                save_checkpoint(best_path, {"config": config.to_dict(), "model": model.state_dict(),
                                            "epoch": epoch + 1, "val_metric": val["metric"], "info": info.__dict__})
            if ranks.main:
                log.append(record)
            if board is not None:
                board.epoch(record)
            if progress:
                print(f"epoch {epoch + 1}: train loss {format_metric(train_loss)}, val {info.metric} "
                      f"{format_metric(val['metric'])}{' (best)' if better else ''}", flush=True)
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, hits=0, count=0, seconds=time.perf_counter() - started)
            if ranks.main:
                save_checkpoint(last_path, payload())
            last_save = time.perf_counter()
            pruned = on_epoch is not None and bool(on_epoch(record))
            if epoch + 1 < opt.epochs and stop_reason():
                return stopped()

    if ranks.main:
        log.plot()
    last_test = evaluate(model, splits.test, info, batch_size, device, ranks)
    ranks.barrier()  # rank 0 has written the best checkpoint
    best_model = load_trained(best_path, device)[0]
    best_test = evaluate(best_model, splits.test, info, batch_size, device, ranks)
    results = {"test_metric": best_test["metric"], "metric_name": info.metric, "best_val_metric": state["best_val"],
               "last_test_metric": last_test["metric"], "test_loss": best_test["loss"],
               "test_accuracy": best_test["accuracy"], "test_macro_f1": best_test["macro_f1"],
               "epochs": opt.epochs, "steps": state["global_step"],
               "seconds": state["seconds"], **baseline(splits), "model": config.model.name,
               "size_bits": model_size_bits(model),
               "precision": {row.name: row.precision for row in size_rows(model)},
               **({"command": state["commands"][0]} if state["commands"][0] else {}),
               **({"resumed_with": resumes} if (resumes := [c for c in state["commands"][1:] if c]) else {})}
    if ranks.main:
        atomic_write_bytes(run_dir / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    if board is not None:
        board.results(results, state["global_step"])
        board.close()
    ranks.barrier()
    return RunResult(True, results, run_dir)


def _calibrate(model: HadamRNN, train, info: TaskInfo, batch_size: int, device: str) -> None:
    """Fixed-point scales for the current weights, chosen by the training loss of the fixed-point model
    on the first ``CALIBRATION_SAMPLES`` training samples (the same on every process)."""
    batches = [train.batch(torch.arange(start, min(start + batch_size, len(train))))
               for start in range(0, min(CALIBRATION_SAMPLES, len(train)), batch_size)]
    inputs = [x.to(device) for x, _ in batches]

    def loss(logits: list[torch.Tensor]) -> float:
        sums = [_loss_and_hits(info, out, y.to(device)) for out, (_, y) in zip(logits, batches)]
        return sum(float(value) * count for value, _, count in sums) / sum(count for _, _, count in sums)

    model.calibrate(inputs, loss)


def _start_from(model: nn.Module, source: str, device: str) -> None:
    """Copy the weights of a trained run (its best checkpoint) into ``model``, which may differ
    from it only by buffers of its own (the fixed-point scales of ``state_bits``, calibrated on the
    first batch) and by its engine."""
    trained = load_trained(source, device)[0].state_dict()
    own = model.state_dict()
    foreign = sorted(set(trained) - set(own))
    missing = sorted(k for k in set(own) - set(trained) if not k.startswith("fixed_point."))
    shapes = sorted(k for k in set(own) & set(trained) if own[k].shape != trained[k].shape)
    if foreign or missing or shapes:
        raise ValueError(f"optim.init_from: {source} holds another architecture (" + "; ".join(
            f"{what}: {', '.join(keys[:4])}" for what, keys in (("not in this model", foreign),
                                                              ("missing", missing), ("other shapes", shapes)) if keys)
                         + "); it must match model except state_bits and engine")
    model.load_state_dict(trained, strict=False)


def load_trained(path: str | Path, device: str = "cpu") -> tuple[nn.Module, ExperimentConfig, TaskInfo]:
    """A model from a checkpoint file (``best``/``last``), a run directory (its best checkpoint) or
    ``pretrained:NAME`` (a model shipped with hadamrnn, :mod:`hadamrnn.pretrained`)."""
    if str(path).startswith(pretrained.PREFIX):
        path = pretrained.checkpoint(str(path))
    path = Path(path)
    if path.is_dir():
        path = checkpoint_path(path, "best")
    checkpoint = load_checkpoint(path, required=("config", "model", "info"))
    config = from_dict(checkpoint["config"])
    try:
        info = TaskInfo.from_dict(checkpoint["info"])
    except ValueError as error:
        raise CheckpointError(f"{path}: its task description is invalid ({error})") from None
    try:
        model = build_model(config, info)
        model.load_state_dict(checkpoint["model"])
    except (TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: its model does not match its configuration ({error})") from None
    return model.to(device), config, info
