"""
Calibration: a reliability diagram
==================================

How often a prediction made with confidence *p* is right, against *p*: a calibrated model lies
on the diagonal. The best single network of a pool is overconfident; the fused ensemble less
so, and temperature scaling fitted on held-out outputs (``calibration="temperature"``) brings it
to the diagonal. ECE is the expected calibration error (:func:`combiners.metrics.ece`).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from combiners import metrics
from ensembles import EnsembleClassifier
from members import NeuralClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
members = [
    (f"mlp{seed}", NeuralClassifier("mlp", max_epochs=40, lr=1e-2, random_state=seed))
    for seed in range(4)
]
ensemble = EnsembleClassifier(members, calibration="temperature", random_state=0).fit(
    X_train, y_train
)
outputs = ensemble.member_predictions(X_test)
labels = np.searchsorted(ensemble.classes_, y_test)
best = int(np.argmin([metrics.nll(labels, output) for output in outputs]))
models = {
    "best member": outputs[best],
    "ensemble, temperature-scaled": ensemble.predict_proba(X_test),
}


def reliability(proba, labels, bins=10):
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    kept = [b for b in range(bins) if (which == b).any()]
    return (
        [confidence[which == b].mean() for b in kept],
        [correct[which == b].mean() for b in kept],
    )


fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot([0, 1], [0, 1], "k:", label="calibrated")
for name, proba in models.items():
    ece = metrics.ece(labels, proba)
    ax.plot(*reliability(proba, labels), "o-", label=f"{name} (ECE {ece:.3f})")
ax.set_xlabel("confidence")
ax.set_ylabel("accuracy")
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()
