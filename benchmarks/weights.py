"""Sample weights against their oracles, measured in one run (the tests assert the same with
tolerances: tests/ensembles/test_weights.py, tests/members/test_weights.py)::

    python benchmarks/weights.py

On 240 rows of ``make_classification`` with integer weights 0 to 3, prints the largest
difference of ``predict_proba``:

- the weighted mean ensemble of three scikit-learn members against
  ``VotingClassifier(voting="soft")`` fitted with the same weights;
- prefit members fused by ``StackingCombiner`` against ``StackingClassifier`` over
  ``FrozenEstimator`` members (the meta-learner fitted with the weights);
- a weighted ``NeuralClassifier`` against one trained on the rows repeated as often as their
  weight, at equal steps (one batch per epoch), in float64 and float32; the same for two members
  of the batched engine; and, with minibatches of 64 (other batches on each side), how often
  their top classes agree.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from combiners import MeanCombiner, StackingCombiner
from ensembles import EnsembleClassifier
from members import NeuralClassifier, fit_batched


def pool() -> list[tuple[str, object]]:
    return [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("nb", GaussianNB()),
    ]


def gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def report(label: str, value: float) -> None:
    print(f"{label:<48} {value:.3g}")


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    X, y = make_classification(240, 6, n_informative=4, random_state=0)
    w = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
    X_rep, y_rep = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))

    ours = EnsembleClassifier(pool(), combiner=MeanCombiner()).fit(X, y, sample_weight=w)
    voting = VotingClassifier(pool(), voting="soft").fit(X, y, sample_weight=w)  # type: ignore[arg-type]
    report(
        "mean ensemble vs VotingClassifier(soft)",
        gap(ours.predict_proba(X), voting.predict_proba(X)),
    )

    first, second = slice(0, 120), slice(120, 240)
    fitted = [(name, member.fit(X[first], y[first])) for name, member in pool()]  # type: ignore[attr-defined]
    stacked = EnsembleClassifier(
        fitted, combiner=StackingCombiner(LogisticRegression()), cv="prefit"
    ).fit(X[second], y[second], sample_weight=w[second])
    reference = StackingClassifier(
        [(name, FrozenEstimator(member)) for name, member in fitted],
        final_estimator=LogisticRegression(),
    ).fit(X[second], y[second], sample_weight=w[second])
    report(
        "prefit stacking vs StackingClassifier",
        gap(stacked.predict_proba(X), reference.predict_proba(X)),
    )

    for precision in ("64-true", "32-true"):
        params = dict(max_epochs=20, batch_size=1024, random_state=0, precision=precision)
        weighted = NeuralClassifier(**params).fit(X, y, sample_weight=w)
        repeated = NeuralClassifier(**params).fit(X_rep, y_rep)
        difference = gap(weighted.predict_proba(X), repeated.predict_proba(X))
        report(f"network {precision}, weighted vs repeated rows", difference)

    def members() -> list[NeuralClassifier]:
        return [
            NeuralClassifier(max_epochs=20, batch_size=1024, random_state=s, precision="64-true")
            for s in (0, 1)
        ]

    weighted_pair, repeated_pair = members(), members()
    fit_batched(weighted_pair, X, y, sample_weight=w)
    fit_batched(repeated_pair, X_rep, y_rep)
    batched = max(
        gap(a.predict_proba(X), b.predict_proba(X))
        for a, b in zip(weighted_pair, repeated_pair, strict=True)
    )
    report("batched engine 64-true, weighted vs repeated", batched)

    weighted = NeuralClassifier(max_epochs=30, batch_size=64, random_state=0).fit(
        X, y, sample_weight=w
    )
    repeated = NeuralClassifier(max_epochs=30, batch_size=64, random_state=0).fit(X_rep, y_rep)
    agreement = float(np.mean(weighted.predict(X) == repeated.predict(X)))
    print(
        f"minibatches of 64 (other batches): top-class agreement {agreement:.3f}, "
        f"largest difference {gap(weighted.predict_proba(X), repeated.predict_proba(X)):.3g}"
    )


if __name__ == "__main__":
    main()
