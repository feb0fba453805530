"""
A pool search and its accuracy-latency front
============================================

An Optuna search over MLP depth, width and learning rate (``space="mlp"``), judged on a
held-out fifth by NLL and by prediction latency. Caruana selection builds the ensemble from all
the trials; ``pareto_`` lists the trials no other beats on both objectives, the networks to
choose from under a latency limit.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from ensembles import EnsembleSearchClassifier
from members import NeuralClassifier

X, y = load_digits(return_X_y=True)
search = EnsembleSearchClassifier(
    NeuralClassifier(max_epochs=10),
    space="mlp",
    n_trials=8,
    ensemble_size=3,
    objectives=("nll", "latency"),
    random_state=0,
).fit(X, y)
trials = search.trials_[search.trials_["state"] == "COMPLETE"]
front = search.pareto_
print(front[["number", "nll", "latency_ms", "weight"]].round(4))

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(trials["latency_ms"], trials["nll"], label="trials")
ax.plot(front["latency_ms"], front["nll"], "o-", color="C3", label="Pareto front")
chosen = trials[trials["weight"] > 0]
ax.scatter(
    chosen["latency_ms"],
    chosen["nll"],
    s=120,
    facecolors="none",
    edgecolors="k",
    label="in the ensemble",
)
ax.set_xlabel("latency (ms per 1000 rows)")
ax.set_ylabel("held-out NLL")
ax.legend(fontsize=8)
fig.tight_layout()
