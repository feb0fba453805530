"""Where member training runs: joblib workers, their threads, and their devices.

:func:`ensembles.training.run_tasks` hands independent member tasks to joblib. joblib's
backend decides where they run: loky processes by default, and a Ray or Dask cluster under
``joblib.parallel_config(backend="ray" | "dask")`` (the user registers the backend; nothing
here imports Ray or Dask). This module holds what every worker needs besides the task:

- :func:`worker_count`: how many tasks run at once, as joblib counts it (``n_jobs=None`` is 1
  unless a ``joblib.parallel_config`` says otherwise, scikit-learn's convention);
- :class:`WorkerTorch`: the torch settings a worker trains under. Its share of the caller's
  torch threads (``max(1, threads // workers)``, the threads being ``min(torch threads,
  cpu_count)``), so that two workers on two cores do not fight over them; and the caller's
  numeric switches (oneDNN on or off, deterministic algorithms, float32 matmul precision),
  which a fresh worker process would otherwise not have;
- :class:`DeviceLease`: on one machine with several GPUs, a task takes a free GPU from a
  pool for as long as it trains (a lock file per device), never ``index % n_gpus``, which puts
  two tasks on one device as soon as their durations differ. Ray
  (``ray_remote_args={"num_gpus": 1}``) and Dask-CUDA set ``CUDA_VISIBLE_DEVICES`` per task
  themselves, so no lease is taken there;
- :func:`share_arrays`: under Ray, the training data goes into Ray's object store once.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import torch

from members.trainer import uses_cuda

# joblib backends whose workers share this machine's devices (a lease is needed there)
LOCAL_BACKENDS = ("LokyBackend", "MultiprocessingBackend", "ThreadingBackend")


def active_backend() -> Any:
    """The joblib backend a ``Parallel()`` made here would use (``parallel_config`` applies)."""
    backend, _ = joblib.parallel.get_active_backend()
    return backend


def worker_count(n_jobs: int | None, n_tasks: int) -> int:
    """How many of ``n_tasks`` tasks run at once under ``n_jobs`` and the active backend.

    Examples
    --------
    >>> worker_count(None, 8), worker_count(2, 8), worker_count(4, 2)
    (1, 2, 2)
    """
    return max(1, min(int(joblib.effective_n_jobs(n_jobs)), n_tasks))


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` workers: the caller's threads (``min(torch threads,
    cpu_count)``) shared out, at least one each.

    Examples
    --------
    >>> threads_per_worker(10 * joblib.cpu_count())
    1
    """
    budget = min(torch.get_num_threads(), joblib.cpu_count())
    return max(1, budget // max(1, workers))


@dataclass(frozen=True)
class WorkerTorch:
    """The torch settings a worker trains under, taken from the caller by :meth:`for_workers`.

    A loky, Ray or Dask worker is a fresh process: without this, a caller who turned oneDNN off
    or asked for deterministic algorithms would get neither in the workers.
    """

    threads: int
    mkldnn: bool
    deterministic: bool
    warn_only: bool
    matmul_precision: str

    @classmethod
    def for_workers(cls, workers: int) -> WorkerTorch:
        """The caller's settings, with its threads shared among ``workers`` workers."""
        return cls.current(threads=threads_per_worker(workers))

    @classmethod
    def current(cls, threads: int | None = None) -> WorkerTorch:
        """This process's settings (with ``threads`` instead of its thread count, if given)."""
        return cls(
            threads=torch.get_num_threads() if threads is None else threads,
            mkldnn=bool(torch.backends.mkldnn.enabled),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            matmul_precision=torch.get_float32_matmul_precision(),
        )

    def install(self) -> None:
        """Make these the settings of this process (until something changes them)."""
        torch.set_num_threads(self.threads)
        torch.backends.mkldnn.enabled = self.mkldnn  # type: ignore[assignment]
        torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)
        torch.set_float32_matmul_precision(self.matmul_precision)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Run the inside under these settings, then restore the worker's own (a reused worker
        runs the next task, maybe of another caller, from where it started)."""
        before = WorkerTorch.current()
        self.install()
        try:
            yield
        finally:
            before.install()


@dataclass
class DeviceLease:
    """A pool of device indices shared by the workers of one machine, one task per device.

    ``lease()`` blocks until a device is free, holds an exclusive lock on its lock file while
    the task trains, and frees it afterwards, also when the task raises or its process dies
    (the operating system drops the lock with the process). Any process that reaches the
    same ``lock_dir`` takes part.

    Parameters
    ----------
    devices : sequence of int
        The device indices to share (``range(torch.cuda.device_count())``, or a fake list in
        a test).
    lock_dir : str
        A folder for the lock files; a new temporary one by default.
    """

    devices: Sequence[int]
    lock_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="device-lease-"))
    poll_seconds: float = 0.05

    @contextmanager
    def lease(self) -> Iterator[int]:
        """The index of a device no other task holds, until the block ends."""
        while True:
            for device in self.devices:
                path = os.path.join(self.lock_dir, f"device-{device}.lock")
                handle = open(path, "a")  # noqa: SIM115 (held open as the lock)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                try:
                    yield device
                    return
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    handle.close()
            time.sleep(self.poll_seconds)


def share_arrays(backend: Any, *arrays: np.ndarray) -> tuple[Any, ...]:
    """``arrays`` as the workers of ``backend`` should receive them: under Ray, put in its
    object store once (each task then reads the same copy; Ray's joblib backend would otherwise
    serialise them with every task); elsewhere as they are (loky memory-maps large arrays
    itself). Ray is used only when the user has registered and imported it."""
    if not type(backend).__module__.startswith("ray."):
        return arrays
    ray = sys.modules["ray"]
    return tuple(ray.put(array) for array in arrays)


def fetch_arrays(*shared: Any) -> tuple[Any, ...]:
    """In a worker: the arrays :func:`share_arrays` handed over (a Ray reference is read from
    the object store; anything else is returned as it is)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return shared
    return tuple(ray.get(item) if isinstance(item, ray.ObjectRef) else item for item in shared)


def device_lease(backend: Any, estimators: Sequence[Any]) -> DeviceLease | None:
    """A lease over this machine's CUDA devices when tasks under ``backend`` share them (loky,
    multiprocessing, threads) and some estimator trains on CUDA; ``None`` otherwise (Ray and
    Dask-CUDA give each task its own device)."""
    if type(backend).__name__ not in LOCAL_BACKENDS or not torch.cuda.is_available():
        return None
    # scikit-learn members have no accelerator: they never need a GPU
    if not any(uses_cuda(getattr(estimator, "accelerator", "cpu")) for estimator in estimators):
        return None
    return DeviceLease(list(range(torch.cuda.device_count())))
