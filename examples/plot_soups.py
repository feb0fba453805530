"""
Averaging two networks' weights: naive against aligned
======================================================

Two MLPs trained on the digits from different seeds compute nearly the same function, but with
their hidden units in another order, so the network half-way between their weights is poor
(the naive curve). Weight matching permutes the second network's units to match the first's
first (``align="weights"``, Ainsworth et al., 2023), or matches them by their activations on
the training rows (``align="activations"``); the straight line between them then stays low, and
the aligned average is a network as good as either (the aligned curves).
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ensembles import loss_barrier, soup
from members import NeuralClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
a, b = (
    NeuralClassifier("mlp", module_kwargs={"hidden": (256,)}, max_epochs=25, random_state=s).fit(
        X_train, y_train
    )
    for s in (0, 1)
)
fig, axis = plt.subplots(figsize=(5.5, 3.6))
for align in (None, "weights", "activations"):
    curve = loss_barrier(a, b, X_test, y_test, steps=11, align=align, X_train=X_train)
    curve.plot(axis, label=align or "naive")
    print(f"{align or 'naive'}: midpoint NLL / ends' = {curve.midpoint_ratio:.2f}")
print(f"accuracy: {a.score(X_test, y_test):.3f}, {b.score(X_test, y_test):.3f}")
for align in ("weights", "activations"):
    merged = soup([a, b], method="uniform", align=align, X_train=X_train)
    print(f"average aligned by {align}: {merged.score(X_test, y_test):.3f}")
axis.set_title("Test NLL between two MLPs' weights")
axis.legend()
fig.tight_layout()
plt.show()
