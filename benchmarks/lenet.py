"""The built-in ``cnn2d`` against a plain-PyTorch LeNet-5 and an MLP on 28x28 digit images.

The images are generated offline (``experiments.data.load_digits28``: scikit-learn's 8x8
digits upscaled to 16-22 pixels, placed at random in a 28x28 frame, with pixel noise; the
split is by source digit). LeNet-5 (LeCun et al., 1998; ReLU and max-pooling) is trained by a
hand-written loop with the library's recipe (AdamW, lr 3e-3, weight decay 1e-2, cosine
schedule, batch 128, the same epochs), so only the networks differ::

    python benchmarks/lenet.py [--epochs 20] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from experiments.data import load_digits28
from members import NeuralClassifier


def lenet5(n_outputs: int = 10) -> nn.Module:
    """LeNet-5 for 28x28 one-channel images (padding 2 on the first convolution, as for MNIST)."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, n_outputs),
    )


def train_lenet(X: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    """A plain PyTorch loop: AdamW, cosine schedule stepped per batch, batch 128."""
    torch.manual_seed(seed)
    network = lenet5()
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.long)
    steps = epochs * int(np.ceil(len(X) / 128))
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    network.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(X), generator=generator).split(128):
            loss = nn.functional.cross_entropy(network(X_t[batch]), y_t[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return network.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_digits28()
    print(f"# {len(X_train)} training and {len(X_test)} test images, 28x28, {args.epochs} epochs")
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        network = train_lenet(X_train, y_train, args.epochs, seed)
        with torch.inference_mode():
            predicted = network(torch.as_tensor(X_test)).argmax(1).numpy()
        rows.append(
            {
                "network": "LeNet-5 (plain PyTorch)",
                "seed": seed,
                "accuracy": float(np.mean(predicted == y_test)),
                "seconds": time.perf_counter() - start,
            }
        )
        for name, module, kwargs in [
            ("cnn2d", "cnn2d", {}),
            ("mlp (256, 256)", "mlp", {}),
        ]:
            start = time.perf_counter()
            estimator = NeuralClassifier(
                module, module_kwargs=kwargs or None, max_epochs=args.epochs, random_state=seed
            ).fit(X_train, y_train)
            rows.append(
                {
                    "network": name,
                    "seed": seed,
                    "accuracy": estimator.score(X_test, y_test),
                    "seconds": time.perf_counter() - start,
                }
            )
        print(pd.DataFrame(rows[-3:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows).groupby("network")[["accuracy", "seconds"]].mean()
    print("\nmean over seeds:")
    print(table.to_string(float_format="{:.4f}".format))


if __name__ == "__main__":
    main()
