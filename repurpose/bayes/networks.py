"""A Bayesian multi-layer perceptron for classification: the likelihood of the BNN head.

The weights of every dense layer (``W`` of shape (out, in), then ``b``) are laid out one
after the other in one flat vector, so the posterior, the prior and the optimiser each see a
single array, and the network slices it inside the (hybridized) graph.
"""
import numpy as np

from .._validation import check_choice, check_positive_int
from ..exceptions import InvalidParameterError
from .elbo import Model

__all__ = ["BayesianMLP", "ACTIVATIONS"]

#: Hidden-layer activations (MXNet ``Activation`` act_type names).
ACTIVATIONS = ("relu", "tanh", "sigmoid", "softrelu")


class BayesianMLP(Model):
    """Dense network with a softmax likelihood, sized by ``layer_sizes`` (inputs first).

    Parameters
    ----------
    layer_sizes : sequence of int
        Input features, hidden units of every hidden layer, classes.
    activation : {'relu', 'tanh', 'sigmoid', 'softrelu'}, default='relu'

    Attributes
    ----------
    n_params : int
        Length of the flat weight vector.

    Examples
    --------
    >>> net = BayesianMLP((4, 8, 3))
    >>> net.n_params  # 8 * 4 + 8 + 3 * 8 + 3
    67
    """

    supports_local = True

    def __init__(self, layer_sizes, activation="relu"):
        sizes = tuple(layer_sizes)
        if len(sizes) < 2:
            raise InvalidParameterError(
                f"layer_sizes needs at least the input and output sizes, got {sizes!r}.")
        self.layer_sizes = tuple(check_positive_int(s, "layer_sizes[{}]".format(i))
                                 for i, s in enumerate(sizes))
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self._layout = []
        offset = 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            w_stop = offset + fan_in * fan_out
            self._layout.append((offset, w_stop, w_stop + fan_out, fan_in, fan_out))
            offset = w_stop + fan_out
        self._n_params = offset

    @property
    def n_params(self):
        return self._n_params

    def __repr__(self):
        return f"BayesianMLP({self.layer_sizes}, activation={self.activation!r})"

    # ------------------------------------------------------------------ layout
    def _layers(self, F, theta):
        for start, w_stop, b_stop, fan_in, fan_out in self._layout:
            weight = F.reshape(F.slice_axis(theta, axis=0, begin=start, end=w_stop),
                               shape=(fan_out, fan_in))
            bias = F.slice_axis(theta, axis=0, begin=w_stop, end=b_stop)
            yield weight, bias, fan_out

    def unflatten(self, theta):
        """Split a flat numpy vector into ``[(W, b), ...]``, ``W`` of shape (out, in)."""
        theta = np.asarray(theta)
        return [(theta[start:w_stop].reshape(fan_out, fan_in), theta[w_stop:b_stop])
                for start, w_stop, b_stop, fan_in, fan_out in self._layout]

    def flatten(self, layers):
        """Inverse of :meth:`unflatten`."""
        return np.concatenate([np.concatenate([np.ravel(w), np.ravel(b)]) for w, b in layers])

    def init_loc(self, rng, dtype=np.float32):
        """Initial means: He-normal weights for ReLU (Glorot-like otherwise), zero biases."""
        gain = 2.0 if self.activation == "relu" else 1.0
        layers = []
        for _, _, _, fan_in, fan_out in self._layout:
            weight = rng.standard_normal((fan_out, fan_in)) * np.sqrt(gain / fan_in)
            layers.append((weight, np.zeros(fan_out)))
        return self.flatten(layers).astype(dtype)

    def prior_scales(self, scale):
        """Per-weight prior scales: ``scale / sqrt(fan_in)`` for weights, ``scale`` for biases.

        With this (Neal 1996) scaling the prior over every pre-activation has the same spread
        whatever the width of the layer below, so one ``scale`` suits 64 or 2048 features.
        """
        layers = [(np.full((fan_out, fan_in), scale / np.sqrt(fan_in)), np.full(fan_out, scale))
                  for _, _, _, fan_in, fan_out in self._layout]
        return self.flatten(layers).astype(np.float32)

    # ------------------------------------------------------------------ forward passes
    def _act(self, F, h):
        return F.Activation(h, act_type=self.activation)

    def logits(self, F, x, w):
        """Logits of shape (n, n_classes) for one weight vector ``w``."""
        h = x
        layers = list(self._layers(F, w))
        for i, (weight, bias, fan_out) in enumerate(layers):
            h = F.FullyConnected(h, weight, bias, num_hidden=fan_out)
            if i < len(layers) - 1:
                h = self._act(F, h)
        return h

    def log_likelihood(self, F, x, y, w):
        return -F.softmax_cross_entropy(self.logits(F, x, w), y)

    def local_noise_size(self, n_draws):
        return n_draws * sum(self.layer_sizes[1:])

    def log_likelihood_local(self, F, x, y, loc, std, noise, n_draws):
        h = x
        offset = 0
        means, stds = list(self._layers(F, loc)), list(self._layers(F, std))
        for i, ((w_loc, b_loc, fan_out), (w_std, b_std, _)) in enumerate(zip(means, stds)):
            mean = F.FullyConnected(h, w_loc, b_loc, num_hidden=fan_out)
            var = F.FullyConnected(F.square(h), F.square(w_std), F.square(b_std),
                                   num_hidden=fan_out)
            eps = F.slice_axis(noise, axis=1, begin=offset, end=offset + n_draws * fan_out)
            offset += n_draws * fan_out
            if i == 0 and n_draws > 1:
                # The input is shared by the draws: one mean and variance, n_draws noises;
                # rows become (sample, draw) pairs, sample-major.
                eps = F.reshape(eps, shape=(0, n_draws, fan_out))
                a = F.broadcast_add(F.expand_dims(mean, axis=1),
                                    F.broadcast_mul(F.expand_dims(F.sqrt(var), axis=1), eps))
                a = F.reshape(a, shape=(-3, 0))
            else:
                a = mean + F.sqrt(var) * F.reshape(eps, shape=(-1, fan_out))
            h = self._act(F, a) if i < len(means) - 1 else a
        labels = F.repeat(y, repeats=n_draws) if n_draws > 1 else y
        return -F.softmax_cross_entropy(h, labels) / n_draws

    def logits_draws(self, F, x, w, n_draws):
        """Logits of shape (n_draws, n, n_classes) for weight draws ``w`` (n_draws, n_params).

        The first layer is one matrix product for all draws, the others batched products.
        """
        h = None
        n_layers = len(self._layout)
        for i, (start, w_stop, b_stop, fan_in, fan_out) in enumerate(self._layout):
            weight = F.slice_axis(w, axis=1, begin=start, end=w_stop)
            bias = F.reshape(F.slice_axis(w, axis=1, begin=w_stop, end=b_stop),
                             shape=(n_draws, 1, fan_out))
            if h is None:
                h = F.dot(x, F.reshape(weight, shape=(n_draws * fan_out, fan_in)),
                          transpose_b=True)  # (n, draws * out)
                h = F.transpose(F.reshape(h, shape=(0, n_draws, fan_out)), axes=(1, 0, 2))
            else:
                h = F.batch_dot(h, F.reshape(weight, shape=(n_draws, fan_out, fan_in)),
                                transpose_b=True)
            h = F.broadcast_add(h, bias)
            if i < n_layers - 1:
                h = self._act(F, h)
        return h
