"""Batched against sequential member training on MNIST-1D, measured in one run.

For every architecture and member count M, the same M members (``members.replicate``, seeds
0 .. M-1) are trained twice: one after another through ``EnsembleClassifier(batched=False)``
(the project's sequential path) and together by the batched engine (``members.fit_batched``).
The table gives wall time, member-samples per second (M x training rows x epochs / seconds),
the speed-up, the mean member test accuracy of both paths, and the path ``batched="auto"``
takes::

    python benchmarks/batched.py                      # CPU-sized defaults
    python benchmarks/batched.py --epochs 30 --mlp 8 --cnn1d   # acceptance on the 2-core CPU
    python benchmarks/batched.py --epochs 20 --accelerator gpu  # on a GPU

The batched column runs ``members.fit_batched`` itself, so M = 1 shows the engine's overhead
for a single member (``EnsembleClassifier`` trains a lone member the ordinary way).

A second table times one optimizer step for M MLPs without Lightning: a plain loop over the
networks, and the engine's two ways of batching them: ``torch.func.vmap`` over
``functional_call`` (any ``nn.Module``) and batched matrix products (``torch.baddbmm``, which
the engine uses for ``members.MLP``).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from torch.nn import functional as F

from combiners import MeanCombiner
from ensembles import EnsembleClassifier
from experiments.data import load_mnist1d
from members import MLP, NeuralClassifier, StackedNetworks, fit_batched, replicate
from members.batched import prefer_batched
from members.trainer import uses_cuda


def _fit(
    pool: list[tuple[str, Any]], batched: bool, data: tuple[np.ndarray, ...]
) -> tuple[float, float]:
    """Seconds to train the pool, and its mean member test accuracy. Sequential: through
    ``EnsembleClassifier.fit``; batched: the engine itself (also for a single member)."""
    X_train, y_train, X_test, y_test = data
    start = time.perf_counter()
    if batched:
        fitted = fit_batched([clone(member) for _, member in pool], X_train, y_train)
    else:
        sequential = EnsembleClassifier(pool, combiner=MeanCombiner(), batched=False)
        fitted = sequential.fit(X_train, y_train).members_
    seconds = time.perf_counter() - start
    accuracy = float(np.mean([m.score(X_test, y_test) for m in fitted]))
    return seconds, accuracy


def training_table(
    sizes: dict[str, list[int]], epochs: int, accelerator: str, data: tuple[np.ndarray, ...]
) -> pd.DataFrame:
    X_train, y_train = data[0], data[1]
    n_classes = len(np.unique(y_train))
    # warm-up: imports, kernels, the first Trainer, on both paths
    warm = replicate(
        NeuralClassifier("mlp", max_epochs=1, accelerator=accelerator, random_state=0), 2
    )
    _fit(warm, False, data)
    _fit(warm, True, data)
    rows = []
    for module, counts in sizes.items():
        for m in counts:
            template = NeuralClassifier(
                module, max_epochs=epochs, accelerator=accelerator, random_state=0
            )
            pool = replicate(template, m)
            seq_s, seq_acc = _fit(pool, False, data)
            bat_s, bat_acc = _fit(pool, True, data)
            work = m * len(X_train) * epochs
            auto = prefer_batched(template, m, X_train.shape[1], n_classes)
            rows.append(
                {
                    "module": module,
                    "M": m,
                    "epochs": epochs,
                    "sequential s": round(seq_s, 2),
                    "batched s": round(bat_s, 2),
                    "sequential M samples/s": round(work / seq_s / 1e6, 3),
                    "batched M samples/s": round(work / bat_s / 1e6, 3),
                    "speed-up": round(seq_s / bat_s, 2),
                    "sequential acc": round(seq_acc, 4),
                    "batched acc": round(bat_acc, 4),
                    "auto takes": "batched" if auto else "sequential",
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return pd.DataFrame(rows)


def _ms_per_step(
    forward: Any, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, steps: int
) -> float:
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def step() -> None:
        optimizer.zero_grad()
        # summed over members, as in BatchedMemberModule
        F.cross_entropy(forward(x).flatten(0, 1), y.flatten(), reduction="sum").backward()
        optimizer.step()

    for _ in range(5):
        step()
    _synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def engine_table(counts: list[int], device: str, steps: int = 30) -> pd.DataFrame:
    """ms per AdamW step for M MLPs 40-256-256-10, batch 128 each: a plain loop over the M
    networks, and the engine's two methods (``StackedNetworks(method="vmap" | "bmm")``)."""
    rows = []
    for m in counts:
        torch.manual_seed(0)
        networks = [MLP(40, 10).to(device) for _ in range(m)]
        x = torch.randn(m, 128, 40, device=device)
        y = torch.randint(0, 10, (m, 128), device=device)

        def loop(x: torch.Tensor, networks: list[MLP] = networks) -> torch.Tensor:
            return torch.stack([network(xm) for network, xm in zip(networks, x, strict=True)])

        params = [p for network in networks for p in network.parameters()]
        timings = {"loop": _ms_per_step(loop, params, x, y, steps)}
        for method in ("vmap", "bmm"):
            stacked = StackedNetworks(networks, method=method).to(device)
            timings[method] = _ms_per_step(stacked, list(stacked.parameters()), x, y, steps)
        rows.append(
            {
                "M": m,
                "loop ms/step": round(timings["loop"], 2),
                "vmap ms/step": round(timings["vmap"], 2),
                "bmm ms/step": round(timings["bmm"], 2),
                "vmap speed-up": round(timings["loop"] / timings["vmap"], 2),
                "bmm speed-up": round(timings["loop"] / timings["bmm"], 2),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--mlp", type=int, nargs="*", default=[1, 8, 32, 128])
    parser.add_argument("--cnn1d", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--output", default=None, help="also write the training table here (CSV)")
    args = parser.parse_args()
    gpu = uses_cuda(args.accelerator)
    device = torch.cuda.get_device_name() if gpu else f"CPU ({platform.processor() or 'cpu'})"
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    data = load_mnist1d()
    sizes = {name: counts for name, counts in (("mlp", args.mlp), ("cnn1d", args.cnn1d)) if counts}
    table = training_table(sizes, args.epochs, args.accelerator, data)
    print(
        "\nSequential: EnsembleClassifier(batched=False).fit; batched: members.fit_batched "
        "(MNIST-1D, 4000 rows, batch 128):"
    )
    print(table.to_markdown(index=False))
    if args.output:
        table.to_csv(args.output, index=False)
    engine = engine_table(args.mlp or [8], "cuda" if gpu else "cpu")
    print("\nOne AdamW step without Lightning, MLP 40-256-256-10, batch 128 per member:")
    print(engine.to_markdown(index=False))


if __name__ == "__main__":
    main()
