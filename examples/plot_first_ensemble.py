"""
The first ensemble: members against the fused ensemble
======================================================

Three members of different kinds (two networks and a linear model) on scikit-learn's digits,
fused with every option at its default: one weight per member learned on a held-out fifth of
the rows, then every member refit on all of them. ``evaluate`` scores each member and the
ensemble on rows none of them was trained on.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from ensembles import EnsembleClassifier
from members import NeuralClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

ensemble = EnsembleClassifier(
    [
        ("wide", NeuralClassifier("mlp", module_kwargs={"hidden": (128,)}, max_epochs=20)),
        ("deep", NeuralClassifier("mlp", module_kwargs={"hidden": (64, 64)}, max_epochs=20)),
        ("linear", LogisticRegression(max_iter=300)),
    ],
    random_state=0,
).fit(X_train, y_train)

table = ensemble.evaluate(X_test, y_test)
print(table.round(4))
print("learned weights:", dict(zip(ensemble.named_members_, ensemble.combiner_.weights_.round(3))))

# %%
# The negative log-likelihood of each member and of the ensemble (lower is better).
fig, ax = plt.subplots(figsize=(6, 3))
table["nll"].plot.barh(ax=ax, color=["C0"] * (len(table) - 1) + ["C3"])
ax.set_xlabel("test NLL")
ax.invert_yaxis()
fig.tight_layout()
