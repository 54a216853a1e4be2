"""The feature-based repurposers: extraction + one head each."""
from .._validation import store_params
from ..heads import BnnHead, GpHead, LogisticHead, SvmHead
from ..persist import register
from ._base import BaseRepurposer

__all__ = ["LogisticRepurposer", "SvmRepurposer", "GpRepurposer", "BnnRepurposer"]


@register
class LogisticRepurposer(BaseRepurposer):
    """Features of ``layers`` of ``source`` + a :class:`~repurpose.heads.LogisticHead`.

    Parameters
    ----------
    source : SourceModel
    layers : tuple of str, default=None
        Layers whose (concatenated) features the head sees; None takes the model card's
        ``feature_layer``.
    pool : {None, 'avg', 'max'}, default=None
        Global pooling of convolutional maps.
    batch_size : int, default=64
    ctx : str, mx.Context or list, default='cpu'
    precision : {'float32', 'int8', 'bf16'}, default='float32'
    cache_features : bool, default=True
        Reuse features of identical inputs across fits and repurposers.
    progress : bool, default=False
    C, standardize, max_iter, class_weight, random_state
        The head's hyper-parameters, see :class:`~repurpose.heads.LogisticHead`.

    Attributes
    ----------
    head_ : LogisticHead
    classes_ : ndarray of shape (n_classes,)
    layers_ : list of str
    layer_dims_ : dict of str -> int

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> model = LogisticRepurposer(SourceModel.from_zoo('digits_cnn'), layers=('fc1_relu_fwd',))
    >>> model.fit(X[:100], y[:100]).score(X[100:200], y[100:200]) > 0.7
    True
    """

    _head_class = LogisticHead

    def __init__(self, source, layers=None, pool=None, batch_size=64, ctx="cpu",
                 precision="float32", cache_features=True, progress=False, C=1.0,
                 standardize=True, max_iter=1000, class_weight=None, random_state=None):
        store_params(self, locals())


@register
class SvmRepurposer(BaseRepurposer):
    """Features of ``layers`` of ``source`` + a :class:`~repurpose.heads.SvmHead`.

    Parameters
    ----------
    source, layers, pool, batch_size, ctx, precision, cache_features, progress
        Feature extraction, see :class:`LogisticRepurposer`.
    C, kernel, gamma, n_folds, standardize, max_iter, random_state
        The head's hyper-parameters, see :class:`~repurpose.heads.SvmHead`.

    Attributes
    ----------
    head_ : SvmHead
    classes_ : ndarray of shape (n_classes,)
    layers_ : list of str
    layer_dims_ : dict of str -> int

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> model = SvmRepurposer(SourceModel.from_zoo('digits_cnn'), layers=('fc1_relu_fwd',),
    ...                       random_state=0)
    >>> model.fit(X[:100], y[:100]).score(X[100:200], y[100:200]) > 0.7
    True
    >>> model.predict_proba(X[:2]).shape  # calibrated on cross-validated decisions
    (2, 5)
    """

    _head_class = SvmHead

    def __init__(self, source, layers=None, pool=None, batch_size=64, ctx="cpu",
                 precision="float32", cache_features=True, progress=False, C=1.0,
                 kernel="rbf", gamma="scale", n_folds=3, standardize=True, max_iter=10000,
                 random_state=None):
        store_params(self, locals())


@register
class GpRepurposer(BaseRepurposer):
    """Features of ``layers`` of ``source`` + a :class:`~repurpose.heads.GpHead`.

    With several layers and ``feature_groups=None``, the head gets one kernel per layer
    (``feature_groups`` = the layers' feature widths), combined by a sum.

    Parameters
    ----------
    source, layers, pool, batch_size, ctx, precision, cache_features, progress
        Feature extraction, see :class:`LogisticRepurposer`.
    kernel, n_inducing, feature_groups, alpha_eps, max_iter, n_mc_samples, random_state
        The head's hyper-parameters, see :class:`~repurpose.heads.GpHead`.

    Attributes
    ----------
    head_ : GpHead
    classes_ : ndarray of shape (n_classes,)
    layers_ : list of str
    layer_dims_ : dict of str -> int

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> model = GpRepurposer(SourceModel.from_zoo('digits_cnn'), layers=('fc1_relu_fwd',),
    ...                      n_inducing=20, max_iter=20, random_state=0)
    >>> model.fit(X[:100], y[:100]).score(X[100:200], y[100:200]) > 0.7
    True
    >>> model.predict_variance(X[:3]).shape
    (3,)
    """

    _head_class = GpHead

    def __init__(self, source, layers=None, pool=None, batch_size=64, ctx="cpu",
                 precision="float32", cache_features=True, progress=False, kernel="rbf",
                 n_inducing=200, feature_groups=None, alpha_eps="auto", max_iter=100,
                 n_mc_samples=1000, random_state=None):
        store_params(self, locals())

    def _make_head(self, layer_dims=None):
        head = super()._make_head(layer_dims)
        if self.feature_groups is None and layer_dims and len(self.layers_) > 1:
            head.set_params(feature_groups=tuple(layer_dims[layer] for layer in self.layers_))
        return head

    def predict_variance(self, X):
        """Predictive variance of the head's latent functions per sample (see GpHead)."""
        return self.head_.predict_variance(self._features_for_predict(X))


@register
class BnnRepurposer(BaseRepurposer):
    """Features of ``layers`` of ``source`` + a :class:`~repurpose.heads.BnnHead`.

    ``ctx`` and ``progress`` serve both extraction and the head's training; ``batch_size``
    is the extraction batch and ``train_batch_size`` the head's minibatch.

    Parameters
    ----------
    source, layers, pool, batch_size, ctx, precision, cache_features, progress
        Feature extraction, see :class:`LogisticRepurposer`.
    hidden_units, activation, prior, prior_scale, estimator, local_reparam, n_epochs,
    train_batch_size, learning_rate, optimizer, n_train_samples, n_samples, init_scale,
    random_state
        The head's hyper-parameters, see :class:`~repurpose.heads.BnnHead`
        (``train_batch_size`` is its ``batch_size``).

    Attributes
    ----------
    head_ : BnnHead
    classes_ : ndarray of shape (n_classes,)
    layers_ : list of str
    layer_dims_ : dict of str -> int

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> model = BnnRepurposer(SourceModel.from_zoo('digits_cnn'), layers=('fc1_relu_fwd',),
    ...                       n_epochs=20, random_state=0)
    >>> model.fit(X[:100], y[:100]).score(X[100:200], y[100:200]) > 0.7
    True
    >>> model.predict_mutual_information(X[:3]).shape  # epistemic uncertainty per sample
    (3,)
    """

    _head_class = BnnHead
    _head_renames = {"batch_size": "train_batch_size"}

    def __init__(self, source, layers=None, pool=None, batch_size=64, ctx="cpu",
                 precision="float32", cache_features=True, progress=False,
                 hidden_units=(64,), activation="relu", prior="gaussian", prior_scale=5.0,
                 estimator="reparam", local_reparam=True, n_epochs=100, train_batch_size=64,
                 learning_rate=1e-2, optimizer="adam", n_train_samples=1, n_samples=32,
                 init_scale=1e-2, random_state=None):
        store_params(self, locals())

    def predict_entropy(self, X):
        """Entropy of the predictive distribution per sample (see BnnHead)."""
        return self.head_.predict_entropy(self._features_for_predict(X))

    def predict_mutual_information(self, X):
        """Epistemic uncertainty (mutual information) per sample (see BnnHead)."""
        return self.head_.predict_mutual_information(self._features_for_predict(X))
