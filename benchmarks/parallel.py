"""Members in parallel against one after another on MNIST-1D, measured in one run.

For each pool (M members of one architecture, seeds 0 .. M-1, ``batched=False``), the same
``EnsembleClassifier`` is fitted with ``n_jobs=1`` and then ``n_jobs=2`` on joblib's loky
processes, twice: *cold* (the workers start and import torch and Lightning inside the timed
fit) and *warm* (the same workers again, as a second fit in a session would find them); and,
when Ray is installed, on a local Ray cluster (``ray.init(num_cpus=2)``, started outside the
timing). Each row gives the seconds, the speed-up over ``n_jobs=1`` and whether
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
    ensemble = EnsembleClassifier(members, batched=False, n_jobs=n_jobs)
    start = time.perf_counter()
    ensemble.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, ensemble.predict_proba(X_test), ensemble.members_


def makespan(seconds: list[float], devices: int) -> float:
    """Longest-processing-time-first list scheduling of ``seconds`` on ``devices`` devices."""
    loads = [0.0] * devices
    for task in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += task
    return max(loads)


def compare(label: str, base: tuple[float, np.ndarray], other: tuple[float, np.ndarray]) -> dict:
    same = np.array_equal(base[1], other[1])
    return {
        "run": label,
        "seconds": round(other[0], 2),
        "speed-up": round(base[0] / other[0], 2),
        "predict_proba": "identical"
        if same
        else f"max diff {np.abs(base[1] - other[1]).max():.1e}",
    }


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
    ray = None
    if not args.no_ray:
        try:
            import ray
            from ray.util.joblib import register_ray

            ray.init(num_cpus=args.n_jobs, include_dashboard=False, log_to_driver=False)
            register_ray()
        except ImportError:
            ray = None
    rows, estimates = [], []
    for spec in args.pools:
        module, n, epochs = spec.split(":")
        members = pool(module, int(n), int(epochs), args.accelerator)
        name = f"{n} {module} x {epochs} epochs"
        base = timed_fit(members, data, 1)
        rows.append({"pool": name} | compare("n_jobs=1", base, base))
        for label in ("loky cold", "loky warm"):
            rows.append(
                {"pool": name} | compare(label, base, timed_fit(members, data, args.n_jobs))
            )
        if ray is not None:
            with joblib.parallel_config(backend="ray"):
                rows.append(
                    {"pool": name} | compare("ray", base, timed_fit(members, data, args.n_jobs))
                )
        print(pd.DataFrame(rows).to_markdown(index=False), "\n", flush=True)
        # the members of a pool share an architecture: each takes about the mean time
        times = [base[0] / len(members)] * len(members)
        estimates.append(
            {"pool": name, "member s (mean)": round(times[0], 2)}
            | {f"{g} device(s) s": round(makespan(times, g), 1) for g in args.gpus}
        )
    print("## Fit time\n")
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("\n## Makespan estimate from measured member times (one member per device)\n")
    print(pd.DataFrame(estimates).to_markdown(index=False))
    if ray is not None:
        ray.shutdown()


if __name__ == "__main__":
    main()
