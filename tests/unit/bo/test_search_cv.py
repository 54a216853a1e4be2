"""BayesSearchCV: a scikit-learn search driven by the BO ask/tell loop."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression

from repurpose.bo import BayesSearchCV, Categorical, Integer, Real, SearchSpace
from repurpose.exceptions import InvalidParameterError


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


@pytest.fixture(scope="module")
def features():
    return make_classification(n_samples=120, n_features=10, n_informative=5, n_classes=3,
                               random_state=0)


def _search(**kw):
    params = dict(estimator=LogisticRegression(max_iter=300),
                  search_space={"C": Real(1e-3, 1e2, log=True)}, n_iter=5, cv=3,
                  random_state=0)
    params.update(kw)
    return BayesSearchCV(**params)


def test_sklearn_estimator_on_digits(digits):
    X, y = digits
    search = _search().fit(X, y)
    res = search.cv_results_
    assert len(res["params"]) == 5 and len(search.optimizer_.trials) == 5
    assert all(1e-3 <= p["C"] <= 1e2 for p in res["params"])
    assert search.best_score_ == pytest.approx(np.max(res["mean_test_score"]))
    assert search.best_params_ == res["params"][search.best_index_]
    assert search.best_estimator_.C == search.best_params_["C"]
    assert search.best_score_ > 0.85 and search.score(X, y) > 0.9
    # the optimiser saw the same scores, maximised
    told = [t.value for t in search.optimizer_.trials]
    np.testing.assert_allclose(told, res["mean_test_score"])
    assert search.optimizer_result_.best_value == pytest.approx(search.best_score_)


@pytest.mark.parametrize("n_iter,n_points", [(1, 1), (7, 3)])
def test_exactly_n_iter_candidates(digits, n_iter, n_points):
    X, y = digits
    search = _search(n_iter=n_iter, n_points=n_points).fit(X, y)
    assert len(search.cv_results_["params"]) == n_iter


def test_reproducible_with_random_state(digits):
    X, y = digits
    a = _search(random_state=3).fit(X, y).cv_results_["params"]
    b = _search(random_state=3).fit(X, y).cv_results_["params"]
    c = _search(random_state=4).fit(X, y).cv_results_["params"]
    assert a == b and a != c


def test_clone_and_get_params():
    space = SearchSpace({"C": Real(1e-2, 10.0, log=True)})
    search = _search(search_space=space, n_points=2)
    params = search.get_params()
    assert params["search_space"] is space and params["n_iter"] == 5
    assert params["estimator__C"] == 1.0
    copy = clone(search)
    assert copy.get_params(deep=False).keys() == search.get_params(deep=False).keys()
    assert copy.search_space == space and copy.n_points == 2
    search.set_params(n_iter=2, estimator__max_iter=50)
    assert search.n_iter == 2 and search.estimator.max_iter == 50


def test_mixed_space_and_multimetric(digits):
    X, y = digits
    space = {"C": Real(1e-2, 10.0, log=True), "max_iter": Integer(20, 200),
             "fit_intercept": Categorical([True, False])}
    search = _search(search_space=space, n_iter=6, scoring=["accuracy", "f1_macro"],
                     refit="f1_macro").fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    told = [t.value for t in search.optimizer_.trials]
    np.testing.assert_allclose(told, search.cv_results_["mean_test_f1_macro"])
    assert isinstance(search.best_params_["max_iter"], int)


def test_heads(features):
    from repurpose.heads import LogisticHead, SvmHead

    X, y = features
    for head, space in [(LogisticHead(), {"C": Real(1e-3, 1e2, log=True)}),
                        (SvmHead(), {"C": Real(1e-2, 1e2, log=True),
                                     "kernel": Categorical(["rbf", "linear"])})]:
        search = BayesSearchCV(head, space, n_iter=4, cv=3, random_state=0).fit(X, y)
        assert len(search.cv_results_["params"]) == 4
        assert search.best_score_ > 0.5
        assert search.predict_proba(X).shape == (len(X), 3)


def test_repurposer_on_zoo_model():
    from repurpose import LogisticRepurposer, SourceModel
    from repurpose.demo import make_demo_task

    X_train, y_train, X_test, y_test = make_demo_task(10, 0)
    rep = LogisticRepurposer(SourceModel.from_zoo("digits_cnn"))
    search = BayesSearchCV(rep, {"C": Real(1e-2, 1e2, log=True)}, n_iter=3, cv=3,
                           random_state=0).fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 3
    assert search.best_estimator_.classes_.tolist() == [5, 6, 7, 8, 9]
    assert search.score(X_test[:200], y_test[:200]) > 0.5


def test_nan_scores_are_failed_trials(digits):
    X, y = digits

    def scorer(est, X_, y_):  # NaN (as error_score gives for failed fits) without intercept
        return est.score(X_, y_) if est.fit_intercept else float("nan")

    space = {"C": Real(0.1, 10.0, log=True), "fit_intercept": Categorical([True, False])}
    search = BayesSearchCV(LogisticRegression(max_iter=100), space, n_iter=8, cv=2,
                           scoring=scorer, random_state=0)
    with pytest.warns(UserWarning, match="non-finite"):  # scikit-learn's own warning
        search.fit(X, y)
    statuses = {t.params["fit_intercept"]: t.status for t in search.optimizer_.trials}
    assert statuses == {True: "ok", False: "failed"}
    assert search.best_params_["fit_intercept"] is True


def test_invalid_inputs(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="not parameters of"):
        _search(search_space={"gamma": Real(0.1, 1.0)}).fit(X, y)
    with pytest.raises(InvalidParameterError, match="search_space must be"):
        _search(search_space=[("C", Real(0.1, 1.0))]).fit(X, y)
    with pytest.raises(InvalidParameterError, match="n_iter"):
        _search(n_iter=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="refit must name"):
        _search(scoring=["accuracy", "f1_macro"], refit=False).fit(X, y)
