"""
How much each member adds: NLL against ensemble size
====================================================

Eight networks of different seeds, fused by the plain mean of their first *k* members, for
*k* = 1 to 8: the test NLL falls fast for the first few members and then flattens, the usual
shape of a deep ensemble's gain. ``member_predictions`` gives every member's output once, and a
combiner fuses any subset of them without training anything again.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from combiners import MeanCombiner, metrics
from ensembles import EnsembleClassifier
from members import NeuralClassifier, replicate

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
network = NeuralClassifier("mlp", module_kwargs={"hidden": (64,)}, max_epochs=15, random_state=0)
ensemble = EnsembleClassifier(replicate(network, 8), combiner=MeanCombiner()).fit(X_train, y_train)
outputs = ensemble.member_predictions(X_test)
labels = np.searchsorted(ensemble.classes_, y_test)
sizes = np.arange(1, len(outputs) + 1)
nll = [metrics.nll(labels, MeanCombiner().fit(outputs[:k]).combine(outputs[:k])) for k in sizes]
alone = [metrics.nll(labels, output) for output in outputs]

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(sizes, nll, "o-", label="mean of the first k members")
ax.axhline(np.mean(alone), color="gray", ls=":", label="a member alone (mean)")
ax.set_xlabel("ensemble size k")
ax.set_ylabel("test NLL")
ax.legend()
fig.tight_layout()
