"""
Predictive uncertainty on a 1-D regression
==========================================

Five networks, each predicting a mean and a variance (``loss="gaussian"``), fitted to noisy
samples of a curve on two separate stretches. ``predict_uncertainty`` splits the predictive
variance into the noise the members predict (aleatoric) and their disagreement (epistemic):
the disagreement is near zero where there are data, rises a little in the gap between the
stretches and grows fast beyond them, and the 90 % interval (``predict_interval``) widens with
it.
"""

import matplotlib.pyplot as plt
import numpy as np

from combiners import MeanCombiner
from ensembles import EnsembleRegressor
from members import NeuralRegressor

rng = np.random.default_rng(0)
x = np.r_[rng.uniform(-3, -0.5, 150), rng.uniform(1, 3, 150)]
y = np.sin(2 * x) + 0.1 * x**2 + rng.normal(0, 0.15, x.size)
members = [
    (f"net{seed}", NeuralRegressor("mlp", loss="gaussian", max_epochs=150, random_state=seed))
    for seed in range(5)
]
ensemble = EnsembleRegressor(members, combiner=MeanCombiner()).fit(x[:, None], y)

grid = np.linspace(-4.5, 4.5, 300)[:, None]
mean = ensemble.predict(grid)
lower, upper = ensemble.predict_interval(grid, coverage=0.9)
parts = ensemble.predict_uncertainty(grid)

fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
top.fill_between(grid[:, 0], lower, upper, alpha=0.3, label="90 % interval")
top.plot(grid[:, 0], mean, label="ensemble mean")
top.plot(x, y, "k.", ms=2, label="training data")
top.legend(fontsize=8)
bottom.plot(grid[:, 0], parts["aleatoric"], label="aleatoric (noise)")
bottom.plot(grid[:, 0], parts["epistemic"], label="epistemic (disagreement)")
bottom.set_xlabel("x")
bottom.set_ylabel("variance")
bottom.legend(fontsize=8)
fig.tight_layout()
