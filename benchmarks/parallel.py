"""Members in parallel against one after another on MNIST-1D, measured in one run.

For each pool (M members of one architecture, seeds 0 .. M-1, ``batched=False``), the same
``EnsembleClassifier`` is fitted with ``n_jobs=1`` and then ``n_jobs=2`` on joblib's loky
processes, twice: *cold* (the workers start and import torch and Lightning inside the timed
fit) and *warm* (the same workers again, as a second fit in a session would find them); and,
when Ray is installed, on a local Ray cluster (``ray.init(num_cpus=2)``, started outside the
timing). First, the machine's own ceiling: how much faster ``n_jobs`` processes of plain
arithmetic finish than one after another (virtual cores often give less than ``n_jobs``).
Each row gives the seconds, the speed-up over ``n_jobs=1`` and whether
``predict_proba`` equals the sequential one bit for bit (else the largest difference)::

    python benchmarks/parallel.py                       # acceptance pools on the 2-core CPU
    python benchmarks/parallel.py --pools mlp:8:100      # one pool: module:members:epochs
    python benchmarks/parallel.py --accelerator gpu      # members on the GPU(s)

The last table estimates the pool's makespan on N devices (GPUs, or workers) with one member
per device at a time, from the mean member time of the ``n_jobs=1`` fit (longest-first list
scheduling; start-up and data transfer left out).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
from joblib.externals.loky import get_reusable_executor

from combiners import MeanCombiner
from ensembles import EnsembleClassifier
from experiments.data import load_mnist1d
from members import NeuralClassifier

DEFAULT_POOLS = ("mlp:8:100", "cnn1d:4:20")


def pool(module: str, members: int, epochs: int, accelerator: str) -> list[tuple[str, Any]]:
    return [
        (
            f"{module}{seed}",
            NeuralClassifier(module, max_epochs=epochs, accelerator=accelerator, random_state=seed),
        )
        for seed in range(members)
    ]


def timed_fit(members: list, data: tuple, n_jobs: int | None) -> tuple[float, np.ndarray, list]:
    X_train, y_train, X_test, _ = data
    ensemble = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False, n_jobs=n_jobs)
    start = time.perf_counter()
    ensemble.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, ensemble.predict_proba(X_test), ensemble.members_


def spin(n: int = 20_000_000) -> int:
    """Pure-Python arithmetic: what n_jobs processes can gain on this machine at best."""
    total = 0
    for i in range(n):
        total += i
    return total


def ceiling(n_jobs: int) -> float:
    """How much faster ``n_jobs`` spinning processes (already started) finish than the same
    spins one after another in this process: the machine's own limit for any pool."""
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(spin)(10) for _ in range(n_jobs))  # start
    start = time.perf_counter()
    for _ in range(n_jobs):
        spin()
    alone = time.perf_counter() - start
    start = time.perf_counter()
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(spin)() for _ in range(n_jobs))
    return alone / (time.perf_counter() - start)


def makespan(seconds: list[float], devices: int) -> float:
    """Longest-processing-time-first list scheduling of ``seconds`` on ``devices`` devices."""
    loads = [0.0] * devices
    for task in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += task
    return max(loads)


def compare(
    label: str, base: tuple[float, np.ndarray], other: tuple[float, np.ndarray], y_test: np.ndarray
) -> dict:
    same = np.array_equal(base[1], other[1])
    return {
        "run": label,
        "seconds": round(other[0], 2),
        "speed-up": round(base[0] / other[0], 2),
        "test accuracy": round(float((other[1].argmax(axis=1) == y_test).mean()), 4),
        "predict_proba": "identical"
        if same
        else f"max diff {np.abs(base[1] - other[1]).max():.1e}",
    }


def _start_ray(n_jobs: int) -> Any:
    """A local Ray cluster of ``n_jobs`` CPUs registered as joblib's ``"ray"`` backend; ``None``
    when Ray is not installed."""
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        return None
    ray.init(num_cpus=n_jobs, include_dashboard=False, log_to_driver=False)
    register_ray()
    return ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", nargs="+", default=list(DEFAULT_POOLS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--gpus", nargs="+", type=int, default=[1, 2, 4, 8])
    args = parser.parse_args()
    data = load_mnist1d()
    print(
        f"# {platform.processor() or platform.machine()}, {joblib.cpu_count()} cores, torch "
        f"{torch.__version__}, accelerator={args.accelerator}, n_jobs={args.n_jobs}\n"
    )
    print(
        f"The machine's ceiling: {args.n_jobs} processes of pure-Python arithmetic finish "
        f"{ceiling(args.n_jobs):.2f}x as fast as one after another.\n",
        flush=True,
    )
    pools = {}
    for spec in args.pools:
        module, n, epochs = spec.split(":")
        pools[f"{n} {module} x {epochs} epochs"] = pool(
            module, int(n), int(epochs), args.accelerator
        )
    rows, estimates, bases = [], [], {}
    for name, members in pools.items():
        base = bases[name] = timed_fit(members, data, 1)
        rows.append({"pool": name} | compare("n_jobs=1", base, base, data[3]))
        # fresh loky workers for each pool: the first fit pays their start, the second not
        get_reusable_executor().shutdown(wait=True)
        for label in ("loky cold", "loky warm"):
            other = timed_fit(members, data, args.n_jobs)
            rows.append({"pool": name} | compare(label, base, other, data[3]))
        print(pd.DataFrame(rows).to_markdown(index=False), "\n", flush=True)
        # the members of a pool share an architecture: each takes about the mean time
        times = [base[0] / len(members)] * len(members)
        estimates.append(
            {"pool": name, "member s (mean)": round(times[0], 2)}
            | {f"{g} device(s) s": round(makespan(times, g), 1) for g in args.gpus}
        )
    # Ray last: its own processes, idle or not, would slow the other runs down
    ray = None if args.no_ray else _start_ray(args.n_jobs)
    if ray is not None:
        for name, members in pools.items():
            with joblib.parallel_config(backend="ray"):
                other = timed_fit(members, data, args.n_jobs)
            rows.append(
                {"pool": name} | compare("ray (started outside)", bases[name], other, data[3])
            )
        ray.shutdown()
    print("## Fit time\n")
    print(pd.DataFrame(rows).sort_values("pool", kind="stable").to_markdown(index=False))
    print("\n## Makespan estimate from the mean member time (one member per device)\n")
    print(pd.DataFrame(estimates).to_markdown(index=False))


if __name__ == "__main__":
    main()
