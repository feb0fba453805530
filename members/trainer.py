"""The :class:`lightning.Trainer` a member trains with, and what surrounds its run.

:func:`build_trainer` is the only place a trainer is made for a member: one device unless the
member asks for more, quiet unless ``verbose`` (:func:`quiet_lightning`), logging under
``log_dir``, on a worker's leased GPU (:func:`on_cuda_device`). The accelerators and
precisions a member accepts are checked before any training (:func:`check_accelerator`); a
Ctrl-C during a run reaches the caller as ``KeyboardInterrupt`` (:func:`keyboard_interrupts`),
and an error names the network it came from (:func:`while_training`).
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import lightning as L
import torch
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

# Lightning's hints that say nothing to a user of the estimators
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*GPU available but not used.*",
    ".*smaller than the logging interval.*",
    ".*have no `val_dataloader`.*",
    ".*LeafSpec.*is deprecated.*",
    # SnapshotEnsemble*(method="swa") swaps our per-step schedule for SWALR on purpose
    ".*SWA is currently only supported every.*",
)


@contextmanager
def quiet_logs(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the loggers ``names`` to ``level`` for the duration of the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.setLevel(old)


@contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Silence Lightning's banner lines and hints unless the user asked for output."""
    if verbose:
        yield
        return
    with (
        quiet_logs("lightning.pytorch", "lightning.fabric", level=logging.WARNING),
        warnings.catch_warnings(),
    ):
        for message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def training_loggers(log_dir: str | None) -> list[Logger] | bool:
    """Lightning loggers writing under ``log_dir``: CSV, plus TensorBoard when it is installed."""
    if log_dir is None:
        return False
    loggers: list[Logger] = [CSVLogger(log_dir, name="csv")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(log_dir, name="tensorboard"))
    return loggers


# The CUDA device a worker leased for the task it runs (ensembles.parallel.DeviceLease);
# None: Lightning's default (the first visible device).
_CUDA_DEVICE: ContextVar[int | None] = ContextVar("cuda_device", default=None)


@contextmanager
def on_cuda_device(index: int | None) -> Iterator[None]:
    """Train on CUDA device ``index`` inside (the Trainer's ``devices=[index]`` and torch's
    current device, which the batched engine uses); ``None`` changes nothing."""
    if index is None:
        yield
        return
    token = _CUDA_DEVICE.set(index)
    previous = torch.cuda.current_device() if torch.cuda.is_available() else None
    if previous is not None:
        torch.cuda.set_device(index)
    try:
        yield
    finally:
        _CUDA_DEVICE.reset(token)
        if previous is not None:
            torch.cuda.set_device(previous)


def build_trainer(
    *,
    max_epochs: int,
    n_batches: int,
    accelerator: str = "auto",
    devices: int | list[int] | str = 1,
    strategy: str = "auto",
    precision: str = "32-true",
    callbacks: list[Callback] | None = None,
    log_dir: str | None = None,
    verbose: bool = False,
) -> L.Trainer:
    """The :class:`lightning.Trainer` that trains a member (quiet unless ``verbose``; no
    checkpoints; logs under ``log_dir`` when given): one device unless ``devices`` says more,
    then ``strategy``; a worker's leased GPU (:func:`on_cuda_device`) when it has one.

    Examples
    --------
    >>> trainer = build_trainer(max_epochs=2, n_batches=10, accelerator="cpu")
    >>> trainer.max_epochs
    2
    """
    leased = _CUDA_DEVICE.get()
    if leased is not None and devices == 1 and uses_cuda(accelerator):
        devices = [leased]
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,  # type: ignore[arg-type]
        max_epochs=max_epochs,
        logger=training_loggers(log_dir),
        enable_checkpointing=False,
        enable_progress_bar=bool(verbose),
        enable_model_summary=bool(verbose),
        log_every_n_steps=max(1, min(50, n_batches)),
        num_sanity_val_steps=0,
        callbacks=list(callbacks or []),
    )


# accelerator names a member accepts; "gpu" is CUDA or Apple's MPS, whichever is present
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
# Lightning's training precisions
PRECISIONS = ("64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed")
# what a member trained with before these were parameters (for estimators saved earlier)
TRAINER_DEFAULTS = {
    "devices": 1,
    "strategy": "auto",
    "precision": "32-true",
    "l1": 0.0,
    "early_stopping": False,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
    "loss": None,
    "class_weight": None,
}


def uses_cuda(accelerator: str) -> bool:
    """Whether a member with this ``accelerator`` trains on a CUDA device here.

    Examples
    --------
    >>> uses_cuda("cpu"), uses_cuda("cuda")
    (False, True)
    """
    accelerator = str(accelerator).lower()
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def check_accelerator(accelerator: str, owner: str) -> None:
    """Refuse, before any training, an ``accelerator`` this machine does not have (Lightning
    would fail inside ``Trainer`` with an import hint for a TPU library, say).

    Examples
    --------
    >>> check_accelerator("cpu", "NeuralClassifier")
    """
    if accelerator in ("auto", "cpu"):
        return
    available = {
        "cuda": CUDAAccelerator.is_available(),
        "mps": MPSAccelerator.is_available(),
        "tpu": XLAAccelerator.is_available(),
    }
    available["gpu"] = available["cuda"] or available["mps"]
    if not available.get(accelerator, False):
        present = ["cpu", *sorted(name for name, ok in available.items() if ok)]
        raise ValueError(
            f"{owner}(accelerator={accelerator!r}): this machine has no {accelerator} device; "
            f"available here: {present} (or 'auto', which picks the best of them)"
        )


@contextmanager
def keyboard_interrupts(trainer: L.Trainer) -> Iterator[None]:
    """Ctrl-C during ``trainer.fit`` reaches the caller as ``KeyboardInterrupt``.

    Lightning turns it into ``sys.exit(1)`` (which would end an interactive session and every
    object in it) and leaves SIGINT ignored for the rest of the process; here the exit becomes
    a ``KeyboardInterrupt`` again and the SIGINT handler is restored.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    except SystemExit:
        if not trainer.interrupted:
            raise
        raise KeyboardInterrupt(
            f"training interrupted (Ctrl-C) in epoch {trainer.current_epoch}"
        ) from None
    finally:
        if main_thread and handler is not None:
            signal.signal(signal.SIGINT, handler)


@contextmanager
def while_training(what: str) -> Iterator[None]:
    """Add ``raised while training <what>`` to any error from inside, so that an error from
    deep in a fit (a diverged loss, say) names the network it came from (``interrupted
    while training <what>`` to a Ctrl-C)."""
    try:
        yield
    except Exception as error:
        error.add_note(f"raised while training {what}")
        raise
    except KeyboardInterrupt as interrupt:
        interrupt.add_note(f"interrupted while training {what}")
        raise
