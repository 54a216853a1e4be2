"""Variational inference for the BNN head, in the shape of Pyro's: priors, a mean-field
posterior, ELBO gradient estimators and an SVI step, as separate pieces.

* :mod:`.priors` -- :class:`GaussianPrior` (analytic KL) and :class:`LaplacePrior` (Monte
  Carlo KL).
* :mod:`.posterior` -- :class:`MeanFieldNormal` with softplus scales.
* :mod:`.elbo` -- the :class:`Model` protocol, :class:`Estimate`, minibatch scaling.
* :mod:`.estimators` -- :class:`ReparamEstimator` (with local reparameterisation) and
  :class:`ScoreFunctionEstimator` (with a :class:`Baseline`).
* :mod:`.svi` -- :class:`SVI`, one optimiser step per minibatch, data-parallel over contexts.
* :mod:`.networks` -- :class:`BayesianMLP`, the dense classifier the head trains.
"""
from .elbo import Estimate, Model, minibatch_scale
from .estimators import ESTIMATORS, Baseline, ReparamEstimator, ScoreFunctionEstimator
from .networks import ACTIVATIONS, BayesianMLP
from .posterior import MeanFieldNormal, inverse_softplus, sample_mean_field, softplus
from .priors import PRIORS, GaussianPrior, LaplacePrior, Prior, make_prior
from .svi import OPTIMIZERS, SVI, make_optimizer

__all__ = ["Estimate", "Model", "minibatch_scale", "ESTIMATORS", "Baseline",
           "ReparamEstimator", "ScoreFunctionEstimator", "ACTIVATIONS", "BayesianMLP",
           "MeanFieldNormal", "inverse_softplus", "sample_mean_field", "softplus", "PRIORS",
           "GaussianPrior", "LaplacePrior", "Prior", "make_prior", "OPTIMIZERS", "SVI",
           "make_optimizer"]
