import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV

from ensembles import EnsembleRegressor
from members import NeuralRegressor


def small_ensemble(**kwargs):
    return EnsembleRegressor(
        [
            ("mlp", NeuralRegressor(max_epochs=20, module_kwargs={"hidden": (32,)})),
            ("ridge", Ridge()),
        ],
        **kwargs,
    )


def test_fit_predict_and_evaluate(regression_data):
    X, y = regression_data
    ens = small_ensemble(random_state=0).fit(X, y)
    predictions = ens.member_predictions(X)
    assert predictions.shape == (2, len(X), 1)
    np.testing.assert_allclose(ens.predict(X), predictions.mean(axis=0).ravel())
    table = ens.evaluate(X, y)
    assert list(table.index) == ["mlp", "ridge", "ensemble"]
    assert list(table.columns) == ["rmse", "mae", "r2", "gaussian_nll", "crps", "coverage", "width"]
    # point members: no distribution of their own, a CRPS equal to their absolute error
    assert table.loc["ridge", ["gaussian_nll", "coverage", "width"]].isna().all()
    assert table.loc["ridge", "crps"] == pytest.approx(table.loc["ridge", "mae"])
    assert table.loc["ensemble", "r2"] == pytest.approx(ens.score(X, y))


def test_multi_output(regression_data):
    X, y = regression_data
    Y = np.column_stack([y, -2 * y])
    ens = small_ensemble(random_state=0).fit(X, Y)
    assert ens.predict(X).shape == (len(X), 2)
    predictions = ens.member_predictions(X)
    assert predictions.shape == (2, len(X), 2)
    np.testing.assert_allclose(ens.predict(X), predictions.mean(axis=0))
    assert ens.score(X, Y) > 0.8


def test_grid_search_over_member_params(regression_data):
    X, y = regression_data
    search = GridSearchCV(small_ensemble(random_state=0), {"ridge__alpha": [0.1, 10.0]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["ridge__alpha"] in (0.1, 10.0)
