"""Bayesian neural-network head: a dense network with a mean-field Gaussian posterior over its
weights, trained by variational inference in MXNet autograd (Bayes by backprop).

The VI pieces (priors, posterior, estimators, SVI) live in :mod:`repurpose.bayes`; this module
validates parameters, standardises features, runs the epochs and makes Monte-Carlo
predictions.
"""
import logging
import math

import mxnet as mx
import numpy as np

from .._progress import tqdm
from .._validation import (Boolean, Custom, Integer, ListOf, Options, Problem, Real, check_choice,
                           is_integer, store_params)
from ..bayes import (ACTIVATIONS, ESTIMATORS, OPTIMIZERS, SVI, BayesianMLP, MeanFieldNormal,
                     ReparamEstimator, ScoreFunctionEstimator, make_prior, minibatch_scale,
                     sample_mean_field, softplus)
from ..bayes.priors import PRIORS
from ..context import resolve_contexts, split_batch
from ..persist import register
from ..seeding import derive_seed
from ._base import BaseHead, fit_standardizer

logger = logging.getLogger(__name__)

__all__ = ["BnnHead"]

#: Rows per forward pass when predicting (all draws at once).
_PREDICT_CHUNK = 1024
_HISTORY_KEYS = ("elbo", "nll", "kl")


_UNITS = ListOf(Integer(1))
_POSITIVE = Real(0, None, low_open=True)


def _hidden_units(value):
    """One width or a tuple/list of widths, as a tuple."""
    if is_integer(value):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise Problem()
    return _UNITS.normalise(value)


def _positive(hint):
    """A positive number; a refused value's message ends with ``hint``."""
    def check(value):
        if not _POSITIVE.contains(value):
            raise Problem(hint)
        return float(value)
    return Custom(check, _POSITIVE.what)


@register
class BnnHead(BaseHead):
    """Bayesian neural-network classifier trained by variational inference (Bayes by backprop).

    A dense network ``n_features -> hidden_units -> n_classes`` with a softmax likelihood
    and a fully factorised Gaussian posterior over every weight (standard deviations
    ``softplus(rho)``), fitted by maximising the minibatch ELBO with an MXNet optimiser.
    Predictions average the softmax over ``n_samples`` weight draws; the spread of those
    draws gives the epistemic uncertainty (:meth:`predict_mutual_information`).

    Parameters
    ----------
    hidden_units : tuple of int, default=(64,)
        Units of each hidden layer; ``()`` gives Bayesian multinomial logistic regression.
    activation : {'relu', 'tanh', 'sigmoid', 'softrelu'}, default='relu'
    prior : {'gaussian', 'laplace'}, default='gaussian'
        Prior on every weight: Gaussian (L2 weight decay; analytic KL) or Laplace (L1 weight
        decay; Monte-Carlo KL).
    prior_scale : float, default=5.0
        Prior standard deviation (Gaussian) or scale ``b`` (Laplace) of a bias; a weight of
        a layer with fan-in ``m`` gets ``prior_scale / sqrt(m)``, so the prior over every
        pre-activation has the same spread whatever the width of the features (Neal 1996).
        Smaller values shrink harder; on 50-1000 samples of 64-512 features, 1.0 lets the
        mean-field posterior collapse onto the prior (underfitting), 3-10 predicts best.
    estimator : {'reparam', 'score'}, default='reparam'
        ELBO gradient: reparameterisation (low variance) or score function with a baseline
        (any likelihood, high variance; for comparison).
    local_reparam : bool, default=True
        With ``estimator='reparam'``, sample pre-activations instead of weights (local
        reparameterisation): independent noise per sample, lower variance, same cost.
        Ignored by the score-function estimator.
    n_epochs : int, default=100
        Passes over the training data.
    batch_size : int, default=64
        Samples per minibatch (clipped to the number of samples).
    learning_rate : float, default=1e-2
        Step size of the optimiser on the ELBO per training sample.
    optimizer : str, default='adam'
        An MXNet optimiser name ('adam', 'sgd', 'rmsprop', ...).
    n_train_samples : int, default=1
        Monte-Carlo draws per training step.
    n_samples : int, default=32
        Weight draws averaged by the predictive methods; read when predicting, so it can be
        changed with ``set_params`` without refitting.
    init_scale : float, default=1e-2
        Initial posterior standard deviation of every weight: small, so training starts
        close to a deterministic network, but not so small that the standard deviations
        (moved by about ``learning_rate`` in log scale per step) cannot grow in the few
        hundred steps that small data sets give.
    ctx : str, mx.Context or list, default='cpu'
        Contexts to train and predict on (``'cpu'``, ``'gpu:0,1'``, ...); each minibatch is
        split across them and their gradients summed, which gives the same model as one
        context up to float rounding. Predictions run on the contexts set when predicting.
    progress : bool, default=False
        Show a progress bar over epochs (tqdm, stderr).
    random_state : int, RandomState or None, default=None
        Seeds the initial means, the minibatch order, the training noise and the
        prediction draws.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    mean_, scale_ : ndarray of shape (n_features,)
        Standardisation of the features.
    layer_sizes_ : tuple of int
        ``(n_features, *hidden_units, n_classes)``.
    loc_ : ndarray of shape (n_params,)
        Posterior means of all weights, flat (see :meth:`posterior_layers`).
    raw_scale_ : ndarray of shape (n_params,)
        Posterior raw scales; standard deviations are ``softplus(raw_scale_)``.
    history_ : dict of list of float
        Per epoch, the mean over minibatches of the ELBO estimate (``'elbo'``), the expected
        negative log-likelihood of the training data (``'nll'``) and ``KL(q || p)``
        (``'kl'``), all for the whole training set.
    predict_seed_ : int
        Seed of the prediction draws: every call uses the same weights, so predictions of a
        fitted model are deterministic.

    See Also
    --------
    repurpose.bayes : the priors, posterior and estimators used here.

    Notes
    -----
    The ELBO of each minibatch ``B`` is ``N / |B| * log p(B | w) - KL(q || p)``; the
    optimiser sees its gradient divided by ``N``. Training noise is drawn for the whole
    minibatch before it is split across contexts, so the device layout does not change the
    result.

    References
    ----------
    .. [1] Blundell, Cornebise, Kavukcuoglu & Wierstra (2015). Weight Uncertainty in Neural
       Networks. ICML.
    .. [2] Kingma, Salimans & Welling (2015). Variational Dropout and the Local
       Reparameterization Trick. NeurIPS.
    .. [3] Williams (1992). Simple statistical gradient-following algorithms for
       connectionist reinforcement learning. Machine Learning 8.
    .. [4] Ranganath, Gerrish & Blei (2014). Black Box Variational Inference. AISTATS.
    .. [5] Neal (1996). Bayesian Learning for Neural Networks. Springer.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(60, centers=3, random_state=0)
    >>> head = BnnHead(hidden_units=(16,), n_epochs=20, random_state=0).fit(X, y)
    >>> head.predict_proba(X[:2]).sum(axis=1).round(6)
    array([1., 1.])
    >>> head.predict_mutual_information(X[:2]).shape
    (2,)
    """

    #: The allowed values of each constructor parameter (checked by ``fit``; ``ctx`` when
    #: it is resolved).
    _parameter_constraints = {
        "hidden_units": Custom(_hidden_units, "a tuple of positive integers such as (64,) or "
                                              "(128, 64), or () for no hidden layer"),
        "activation": Options(*ACTIVATIONS),
        "prior": Options(*PRIORS),
        "prior_scale": _positive("Try 5.0, or 1.0 for stronger shrinkage."),
        "estimator": Options(*ESTIMATORS),
        "local_reparam": Boolean(),
        "n_epochs": Integer(1),
        "batch_size": Integer(1),
        "learning_rate": _positive("Try 1e-2 with adam or 1e-1 with sgd."),
        "optimizer": Options(*OPTIMIZERS),
        "n_train_samples": Integer(1),
        "n_samples": Integer(1),
        "init_scale": _positive("Try 1e-2."),
        "progress": Boolean(),
    }

    def __init__(self, hidden_units=(64,), activation="relu", prior="gaussian",
                 prior_scale=5.0, estimator="reparam", local_reparam=True, n_epochs=100,
                 batch_size=64, learning_rate=1e-2, optimizer="adam", n_train_samples=1,
                 n_samples=32, init_scale=1e-2, ctx="cpu", progress=False, random_state=None):
        store_params(self, locals())

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, n_classes, random_state):
        hidden = _hidden_units(self.hidden_units)
        contexts = resolve_contexts(self.ctx)
        seed = derive_seed(random_state)
        rng = np.random.default_rng(seed)
        n, d = X.shape
        self.mean_, self.scale_ = fit_standardizer(X)
        Xs = ((X - self.mean_) / self.scale_).astype(np.float32)
        ys = y.astype(np.float32)

        model = BayesianMLP((d,) + hidden + (n_classes,), self.activation)
        posterior = MeanFieldNormal.from_init(model.init_loc(rng), self.init_scale, contexts)
        prior = make_prior(self.prior, model.prior_scales(float(self.prior_scale)))
        estimator = ReparamEstimator(local=bool(self.local_reparam)) \
            if self.estimator == "reparam" else ScoreFunctionEstimator(baseline=True)
        svi = SVI(model, posterior, prior, estimator, self.optimizer,
                  float(self.learning_rate), grad_scale=1.0 / n)
        batch_size = min(int(self.batch_size), n)
        n_draws = int(self.n_train_samples)
        logger.debug("BnnHead: %d samples, network %s, %d weights, %s, %s prior, contexts %s",
                     n, model.layer_sizes, model.n_params, estimator, self.prior, contexts)

        history = {key: [] for key in _HISTORY_KEYS}
        bar = tqdm(range(int(self.n_epochs)), desc="BnnHead", unit="epoch",
                   disable=not self.progress, leave=False)
        try:
            for epoch in bar:
                terms = {key: [] for key in _HISTORY_KEYS}
                order = rng.permutation(n)
                for start in range(0, n, batch_size):
                    index = order[start:start + batch_size]
                    parts = [(ctx, x, t) for (ctx, x), (_, t) in zip(
                        split_batch(Xs[index], contexts), split_batch(ys[index], contexts))]
                    estimate = svi.step(parts, minibatch_scale(n, len(index)), rng, n_draws)
                    terms["elbo"].append(estimate.elbo)
                    terms["nll"].append(estimate.log_likelihood)
                    terms["kl"].append(estimate.kl)
                # Reduced and waited for once per epoch: the steps run asynchronously.
                elbo, ll, kl = (float(mx.nd.add_n(*terms[key]).asscalar()) / len(terms[key])
                                for key in _HISTORY_KEYS)
                if not math.isfinite(elbo):
                    raise FloatingPointError(
                        f"BnnHead's ELBO became {elbo} in epoch {epoch + 1}; lower "
                        f"learning_rate (now {self.learning_rate}) or init_scale (now "
                        f"{self.init_scale}).")
                history["elbo"].append(elbo)
                history["nll"].append(-ll)
                history["kl"].append(kl)
                bar.set_postfix(elbo=f"{elbo:.4g}", refresh=False)
                logger.info("BnnHead epoch %d/%d: ELBO %.4g, NLL %.4g, KL %.4g", epoch + 1,
                            self.n_epochs, elbo, -ll, kl)
        finally:
            bar.close()

        self.layer_sizes_ = model.layer_sizes
        self._fit_activation = model.activation  # the network of loc_, whatever set_params does
        self.loc_, self.raw_scale_ = posterior.to_numpy()
        self.history_ = history
        self.predict_seed_ = int(rng.integers(0, 2**31 - 1))

    # ------------------------------------------------------------------ predict
    def _model(self):
        return BayesianMLP(self.layer_sizes_, self._fit_activation)

    def _proba_draws(self, X):
        """Softmax of every weight draw, shape (n_samples, n, n_classes), float64."""
        n_samples = self._parameter_constraints["n_samples"].check(self.n_samples, "n_samples")
        contexts = resolve_contexts(self.ctx)
        model = self._model()
        rng = np.random.default_rng(self.predict_seed_)
        w = sample_mean_field(self.loc_, self.raw_scale_, n_samples, rng, np.float64)
        w_on = {ctx: mx.nd.array(w, ctx=ctx, dtype=np.float64) for ctx in contexts}
        Xs = (X - self.mean_) / self.scale_
        out = np.empty((n_samples, len(X), self.layer_sizes_[-1]))
        for start in range(0, len(X), _PREDICT_CHUNK):
            row = start
            for ctx, x in split_batch(Xs[start:start + _PREDICT_CHUNK].astype(np.float64),
                                      contexts):
                logits = model.logits_draws(mx.nd, x, w_on[ctx], n_samples)
                out[:, row:row + x.shape[0]] = mx.nd.softmax(logits, axis=-1).asnumpy()
                row += x.shape[0]
        return out / out.sum(axis=-1, keepdims=True)

    def _predict_proba(self, X):
        return self._proba_draws(X).mean(axis=0)

    def predict_proba_samples(self, X):
        """Class probabilities under each of the ``n_samples`` weight draws.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_samples_X, n_classes)
            Their mean over the first axis is :meth:`predict_proba`.
        """
        return self._proba_draws(self._validate_X_predict(X))

    def predict_entropy(self, X):
        """Entropy (nats) of the predictive distribution: total uncertainty.

        Returns
        -------
        ndarray of shape (n_samples_X,)
        """
        mean = self.predict_proba(X)
        return _entropy(mean)

    def predict_mutual_information(self, X):
        """Epistemic uncertainty: mutual information between the label and the weights.

        ``H[E_w p(y | x, w)] - E_w H[p(y | x, w)]`` (nats), the entropy of the mean
        prediction minus the mean entropy of the draws' predictions (BALD). It is zero when
        every draw predicts alike and grows where the weights disagree.

        Returns
        -------
        ndarray of shape (n_samples_X,)
        """
        draws = self.predict_proba_samples(X)
        return np.maximum(_entropy(draws.mean(axis=0)) - _entropy(draws).mean(axis=0), 0.0)

    def posterior_layers(self):
        """Posterior means and standard deviations per layer.

        Returns
        -------
        list of dict
            One per layer: ``'weight_loc'``, ``'weight_std'`` (shape (out, in)),
            ``'bias_loc'``, ``'bias_std'`` (shape (out,)).
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        model = self._model()
        locs = model.unflatten(self.loc_)
        stds = model.unflatten(softplus(self.raw_scale_.astype(np.float64)))
        return [{"weight_loc": wl, "weight_std": ws, "bias_loc": bl, "bias_std": bs}
                for (wl, bl), (ws, bs) in zip(locs, stds)]

    # ------------------------------------------------------------------ state
    def _get_fitted_state(self):
        model = self._model()
        arrays = {"mean_": self.mean_, "scale_": self.scale_}
        for i, ((wl, bl), (wr, br)) in enumerate(zip(model.unflatten(self.loc_),
                                                     model.unflatten(self.raw_scale_))):
            arrays[f"layer{i}_weight_loc"] = wl
            arrays[f"layer{i}_bias_loc"] = bl
            arrays[f"layer{i}_weight_raw_scale"] = wr
            arrays[f"layer{i}_bias_raw_scale"] = br
        for key in _HISTORY_KEYS:
            arrays[f"history_{key}"] = np.asarray(self.history_[key], dtype=np.float64)
        state = {"layer_sizes_": list(self.layer_sizes_), "activation": self._fit_activation,
                 "predict_seed_": self.predict_seed_}
        return state, arrays

    def _set_fitted_state(self, state, arrays):
        self.layer_sizes_ = tuple(int(s) for s in state["layer_sizes_"])
        self.predict_seed_ = int(state["predict_seed_"])
        self._fit_activation = check_choice(state["activation"], "activation", ACTIVATIONS)
        self.mean_, self.scale_ = arrays["mean_"], arrays["scale_"]
        model = self._model()
        n_layers = len(self.layer_sizes_) - 1
        self.loc_ = model.flatten([(arrays[f"layer{i}_weight_loc"], arrays[f"layer{i}_bias_loc"])
                                   for i in range(n_layers)]).astype(np.float32)
        self.raw_scale_ = model.flatten(
            [(arrays[f"layer{i}_weight_raw_scale"], arrays[f"layer{i}_bias_raw_scale"])
             for i in range(n_layers)]).astype(np.float32)
        self.history_ = {key: arrays[f"history_{key}"].tolist() for key in _HISTORY_KEYS}


def _entropy(p):
    """Entropy in nats along the last axis, with ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1)
