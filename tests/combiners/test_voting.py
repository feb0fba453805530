import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from combiners import VotingCombiner


def test_majority_equals_sklearn_hard_voting():
    X, y = load_iris(return_X_y=True)
    estimators = [
        ("lr", LogisticRegression(max_iter=200)),
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("knn", KNeighborsClassifier(n_neighbors=3)),
    ]
    voting = VotingClassifier(estimators, voting="hard").fit(X, y)
    predictions = np.stack([est.predict_proba(X) for est in voting.estimators_])
    shares = VotingCombiner().fit(predictions, y).combine(predictions)
    np.testing.assert_array_equal(shares.argmax(axis=1), voting.predict(X))


def test_ties_go_to_the_first_class():
    predictions = np.array([[[0.2, 0.8]], [[0.7, 0.3]]])
    shares = VotingCombiner().fit(predictions).combine(predictions)
    np.testing.assert_array_equal(shares, [[0.5, 0.5]])
    assert shares.argmax(axis=1)[0] == 0
