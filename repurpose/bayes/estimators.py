r"""Gradient estimators of the ELBO: reparameterisation (pathwise) and score function.

Both return an :class:`~repurpose.bayes.elbo.Estimate`: the ELBO to report and surrogate
losses whose gradient is an unbiased estimate of minus the ELBO's gradient (Pyro's
``loss_and_surrogate_loss`` split, ``pyro-ppl/pyro:pyro/infer/tracegraph_elbo.py``).

With :math:`w = \mathcal{T}(\epsilon; \theta) = \mu + \mathrm{softplus}(\rho)\,\epsilon`,
:math:`\epsilon \sim N(0, I)`, and :math:`f(w) = \log p(D \mid w)` (scaled to the data):

* **reparameterisation** -- differentiate through the draw,
  :math:`\nabla_\theta \mathbb{E}_q[f] = \mathbb{E}_{\epsilon}[\nabla_w f(w)\,
  \nabla_\theta \mathcal{T}(\epsilon; \theta)]` (Kingma & Welling 2014). With local
  reparameterisation the model samples pre-activations instead of weights, which gives every
  row its own noise and lowers the variance further (Kingma, Salimans & Welling 2015).
* **score function** (REINFORCE, Williams 1992; black-box VI, Ranganath et al. 2014) --
  :math:`\nabla_\theta \mathbb{E}_q[f] = \mathbb{E}_q[(f(w) - b)\,\nabla_\theta \log q(w;
  \theta)]`, valid for any ``f`` and any baseline ``b`` that does not depend on ``w``; the
  surrogate multiplies the *detached* cost minus the baseline by ``log q(w)``. The baseline
  is a control variate trained by its own loss (:class:`Baseline`).

The KL term is analytic where the prior offers it (Gaussian) and a Monte-Carlo estimate
``log q(w) - log p(w)`` otherwise (Laplace), as in Pyro's ``TraceMeanField_ELBO`` versus
``Trace_ELBO``. Noise comes from a numpy ``Generator`` and is drawn for the whole minibatch
before it is split across contexts, so results do not depend on the device layout.
"""
import numbers
import warnings

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..exceptions import InvalidParameterError
from .elbo import Estimate, check_parts, total
from .posterior import MeanFieldNormal

__all__ = ["ReparamEstimator", "ScoreFunctionEstimator", "Baseline", "ESTIMATORS"]


class _GraphBlock(gluon.HybridBlock):
    """A parameter-free HybridBlock around an F-generic function ``fn(F, *inputs)``."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def hybrid_forward(self, F, *inputs):  # pylint: disable=arguments-differ
        return self._fn(F, *inputs)

    def __call__(self, *inputs):
        # A model may ignore some inputs (a likelihood without covariates); MXNet warns about
        # unused graph inputs while it builds the graph, which here is intended.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input to HybridBlock is not used")
            return super().__call__(*inputs)


def _cached_block(cache, key, build):
    block = cache.get(key)
    if block is None:
        block = _GraphBlock(build())
        block.hybridize(static_alloc=True)
        cache[key] = block
    return block


def _prior_inputs_on(cache, prior, n_params, ctx):
    """The prior's constant graph inputs on ``ctx``, computed once."""
    key = ("prior", prior, n_params, ctx)
    if key not in cache:
        cache[key] = [mx.nd.array(a, ctx=ctx, dtype=np.float32)
                      for a in prior.graph_inputs(n_params)]
    return cache[key]


def _on(array, ctx):
    """A float32 numpy array as an NDArray on ``ctx``, without a copy on the CPU."""
    # DLPack hands the numpy buffer to MXNet (it becomes read-only and is kept alive by the
    # NDArray): no synchronous copy, which would wait for the engine's queue.
    nd = mx.nd.from_numpy(np.ascontiguousarray(array, dtype=np.float32), zero_copy=True)
    return nd if ctx == nd.context else nd.as_in_context(ctx)


def _draw(F, noise, s, loc, std):
    eps = F.reshape(F.slice_axis(noise, axis=0, begin=s, end=s + 1), shape=(-1,))
    return MeanFieldNormal.rsample(F, loc, std, eps)


def _check_draws(n_draws):
    if isinstance(n_draws, (bool, np.bool_)) or not isinstance(n_draws, numbers.Integral) \
            or n_draws < 1:
        raise InvalidParameterError(f"n_draws must be an integer >= 1, got {n_draws!r}.")
    return int(n_draws)


class ReparamEstimator:
    """Reparameterisation-gradient estimator of the ELBO (Bayes by backprop).

    Parameters
    ----------
    local : bool, default=True
        Use local reparameterisation when the model supports it (dense networks): sample
        pre-activations from their Gaussian instead of weights. Models without it fall back
        to sampling weights.

    Notes
    -----
    With a prior without analytic KL (Laplace) the KL term is estimated at weight draws; under
    local reparameterisation these are separate draws, independent of the pre-activation
    noise, which keeps the estimate unbiased.

    References
    ----------
    .. [1] Blundell, Cornebise, Kavukcuoglu & Wierstra (2015). Weight Uncertainty in Neural
       Networks. ICML.
    .. [2] Kingma, Salimans & Welling (2015). Variational Dropout and the Local
       Reparameterization Trick. NeurIPS.

    Examples
    --------
    >>> ReparamEstimator(local=False)
    ReparamEstimator(local=False)
    """

    name = "reparam"

    def __init__(self, local=True):
        self.local = bool(local)
        self._cache = {}

    def __repr__(self):
        return f"ReparamEstimator(local={self.local})"

    def _graph(self, model, prior, local, mc_kl, with_kl, n_draws, data_scale):
        needs_weights = (not local) or (with_kl and mc_kl)

        def graph(F, x, y, *rest):
            rest = list(rest)
            noise = rest.pop(0) if local else None
            weight_noise = rest.pop(0) if needs_weights else None
            loc, raw = rest.pop(0), rest.pop(0)
            std = MeanFieldNormal.std(F, raw)
            draws = [_draw(F, weight_noise, s, loc, std) for s in range(n_draws)] \
                if needs_weights else []
            if local:
                ll = model.log_likelihood_local(F, x, y, loc, std, noise, n_draws)
            else:
                ll = sum(model.log_likelihood(F, x, y, w) for w in draws) / n_draws
            scaled_ll = data_scale * ll
            if not with_kl:
                return -scaled_ll, scaled_ll
            prior_inputs = rest  # the prior's constants
            if mc_kl:
                kl = sum(total(F, MeanFieldNormal.log_prob(F, w, loc, std))
                         - prior.log_prob_sum(F, w, *prior_inputs) for w in draws) / n_draws
            else:
                kl = prior.kl_normal_sum(F, loc, std, *prior_inputs)
            # outputs: surrogate (differentiated), then ELBO, scaled log-likelihood and KL
            return kl - scaled_ll, scaled_ll - kl, scaled_ll, kl

        return graph

    def estimate(self, model, posterior, prior, parts, data_scale, rng, n_draws=1):
        """Estimate the ELBO on one minibatch and build the surrogate losses.

        Parameters
        ----------
        model : Model
        posterior : MeanFieldNormal
        prior : Prior
        parts : list of (mx.Context, NDArray, NDArray)
            The minibatch split across the posterior's contexts, first part on the first
            context (:func:`repurpose.context.split_batch`).
        data_scale : float
            ``N / |B|`` (:func:`~repurpose.bayes.elbo.minibatch_scale`).
        rng : numpy.random.Generator
            Source of every random number.
        n_draws : int, default=1
            Monte-Carlo draws averaged in the estimate.

        Returns
        -------
        Estimate
        """
        check_parts(parts, posterior)
        n_draws = _check_draws(n_draws)
        local = self.local and model.supports_local
        mc_kl = not prior.has_analytic_kl
        n_rows = sum(int(x.shape[0]) for _, x, _ in parts)
        noise = rng.standard_normal((n_rows, model.local_noise_size(n_draws)),
                                    dtype=np.float32) if local else None
        weight_noise = rng.standard_normal((n_draws, posterior.n_params), dtype=np.float32) \
            if (not local or mc_kl) else None
        main = posterior.contexts[0]
        prior_inputs = _prior_inputs_on(self._cache, prior, posterior.n_params, main)
        surrogates, contexts, lls = [], [], []
        elbo = kl = None
        start = 0
        with autograd.record():
            for k, (ctx, x, y) in enumerate(parts):
                with_kl = k == 0
                stop = start + int(x.shape[0])
                inputs = [x, y]
                if local:
                    inputs.append(_on(noise[start:stop], ctx))
                if not local or (with_kl and mc_kl):
                    inputs.append(_on(weight_noise, ctx))
                inputs += [posterior.loc(ctx), posterior.raw_scale(ctx)]
                if with_kl:
                    inputs += prior_inputs
                key = (model, prior, local, mc_kl, with_kl, n_draws, float(data_scale))
                block = _cached_block(self._cache, key, lambda: self._graph(
                    model, prior, local, mc_kl, with_kl, n_draws, float(data_scale)))
                outputs = block(*inputs)
                surrogates.append(outputs[0])
                contexts.append(ctx)
                if with_kl:
                    elbo, log_likelihood, kl = (o.detach() for o in outputs[1:])
                else:
                    lls.append(outputs[1].detach().as_in_context(main))
                start = stop
        if lls:  # the other contexts' parts of the likelihood
            log_likelihood = mx.nd.add_n(log_likelihood, *lls)
            elbo = log_likelihood - kl
        return Estimate(elbo, log_likelihood, kl, surrogates, contexts)


class Baseline:
    r"""A scalar control variate ``b`` for the score-function estimator, trained by its own loss.

    Its loss is :math:`\frac12 (b - c)^2` for the (detached) cost :math:`c` of each step; one
    step of gradient descent with rate :math:`\alpha` is :math:`b \leftarrow b - \alpha (b - c)`,
    an exponential moving average of the cost with decay :math:`1 - \alpha` (Pyro's
    ``baseline_beta``). It is updated *after* the step that uses it, so ``b`` never depends
    on the draw it multiplies and the estimator stays unbiased. Before the first update the
    value is 0; the first update sets it to the first cost.

    Parameters
    ----------
    learning_rate : float, default=0.1
        Rate ``alpha`` in ``(0, 1]``.

    Examples
    --------
    >>> b = Baseline(0.5)
    >>> b.update(4.0); b.update(2.0); b.value
    3.0
    """

    def __init__(self, learning_rate=0.1):
        if isinstance(learning_rate, (bool, np.bool_)) or not isinstance(
                learning_rate, numbers.Real) or not 0 < learning_rate <= 1:
            raise InvalidParameterError(
                f"Baseline learning_rate must be in (0, 1], got {learning_rate!r}; 0.1 "
                f"averages about the last 10 costs.")
        self.learning_rate = float(learning_rate)
        self._value = None

    @property
    def value(self):
        """The current baseline (0.0 before the first update)."""
        return 0.0 if self._value is None else self._value

    def loss(self, cost):
        """The baseline's own loss ``(b - cost)^2 / 2``."""
        return 0.5 * (self.value - float(cost)) ** 2

    def update(self, cost):
        """One gradient step on :meth:`loss` (the first call sets ``b`` to ``cost``)."""
        cost = float(cost)
        if self._value is None:
            self._value = cost
        else:
            self._value -= self.learning_rate * (self._value - cost)


class ScoreFunctionEstimator:
    r"""Score-function (REINFORCE / black-box VI) estimator of the ELBO, with a baseline.

    The surrogate for draws :math:`w_s` with costs :math:`c_s = -\frac{N}{|B|} \log p(B
    \mid w_s)` (plus ``log q(w_s) - log p(w_s)`` when the prior has no analytic KL) is
    ``sum_s stop_gradient(c_s - b) / S * log q(w_s)`` plus the analytic KL when there is one.
    Only the posterior's log density is differentiated, never the model: the estimator works
    for any likelihood, but its variance is much larger than the reparameterisation
    gradient's.

    Parameters
    ----------
    baseline : bool or Baseline, default=True
        ``True`` uses ``Baseline(0.1)``; ``False`` none (plain REINFORCE).

    References
    ----------
    .. [1] Williams (1992). Simple statistical gradient-following algorithms for
       connectionist reinforcement learning. Machine Learning 8.
    .. [2] Ranganath, Gerrish & Blei (2014). Black Box Variational Inference. AISTATS.

    Examples
    --------
    >>> ScoreFunctionEstimator(baseline=False)
    ScoreFunctionEstimator(baseline=None)
    """

    name = "score"

    def __init__(self, baseline=True):
        if baseline is True:
            baseline = Baseline()
        elif baseline is False or baseline is None:
            baseline = None
        elif not isinstance(baseline, Baseline):
            raise InvalidParameterError(
                f"baseline must be True, False or a Baseline, got {baseline!r}.")
        self.baseline = baseline
        self._cache = {}

    def __repr__(self):
        shown = None if self.baseline is None else f"Baseline({self.baseline.learning_rate})"
        return f"ScoreFunctionEstimator(baseline={shown})"

    @staticmethod
    def _graph(model, n_draws):
        def graph(F, x, y, w):
            lls = [model.log_likelihood(F, x, y, F.reshape(
                F.slice_axis(w, axis=0, begin=s, end=s + 1), shape=(-1,)))
                for s in range(n_draws)]
            return lls[0] if n_draws == 1 else F.concat(*lls, dim=0)

        return graph

    def estimate(self, model, posterior, prior, parts, data_scale, rng, n_draws=1):
        """Estimate the ELBO on one minibatch and build the surrogate loss.

        Parameters are those of :meth:`ReparamEstimator.estimate`. The baseline is updated
        with this step's mean cost after the surrogate is built.

        Returns
        -------
        Estimate
        """
        check_parts(parts, posterior)
        n_draws = _check_draws(n_draws)
        mc_kl = not prior.has_analytic_kl
        main = posterior.contexts[0]
        loc, raw = posterior.loc(), posterior.raw_scale()
        eps = _on(rng.standard_normal((n_draws, posterior.n_params), dtype=np.float32), main)
        std = MeanFieldNormal.std(mx.nd, raw)
        w = mx.nd.broadcast_add(loc.reshape((1, -1)), mx.nd.broadcast_mul(std.reshape((1, -1)),
                                                                          eps))
        block = _cached_block(self._cache, (model, n_draws),
                              lambda: self._graph(model, n_draws))
        ll = None
        for ctx, x, y in parts:
            part = block(x, y, w.as_in_context(ctx)).as_in_context(main)
            ll = part if ll is None else ll + part
        cost = -data_scale * ll  # (n_draws,)
        prior_inputs = _prior_inputs_on(self._cache, prior, posterior.n_params, main)
        if mc_kl:
            kl_draws = mx.nd.concat(*[
                total(mx.nd, MeanFieldNormal.log_prob(mx.nd, w[s], loc, std))
                - prior.log_prob_sum(mx.nd, w[s], *prior_inputs) for s in range(n_draws)], dim=0)
            cost = cost + kl_draws
        costs = cost.asnumpy().astype(np.float64)
        coef = (costs - (self.baseline.value if self.baseline is not None else 0.0)) / n_draws
        with autograd.record():
            std_r = MeanFieldNormal.std(mx.nd, raw)
            surrogate = None
            for s in range(n_draws):
                term = float(coef[s]) * total(mx.nd, MeanFieldNormal.log_prob(mx.nd, w[s], loc,
                                                                              std_r))
                surrogate = term if surrogate is None else surrogate + term
            if not mc_kl:
                kl = prior.kl_normal_sum(mx.nd, loc, std_r, *prior_inputs)
                surrogate = surrogate + kl
        if self.baseline is not None:
            self.baseline.update(costs.mean())
        log_likelihood = (data_scale * ll).mean()
        kl = kl_draws.mean() if mc_kl else kl.detach()
        return Estimate(log_likelihood - kl, log_likelihood, kl, [surrogate], [main])


#: The estimators by name, as the ``estimator`` parameter of ``BnnHead`` names them.
ESTIMATORS = {"reparam": ReparamEstimator, "score": ScoreFunctionEstimator}
