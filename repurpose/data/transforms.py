"""Image transforms for :class:`~repurpose.data.ImageFolder`, built from Gluon's own
``mxnet.gluon.data.vision.transforms`` (resize, centre crop, to-tensor, normalise).
"""
import numbers

from mxnet.gluon.data.vision import transforms as T

from .._validation import check_positive_int
from ..exceptions import InvalidParameterError

__all__ = ["image_transform", "IMAGENET_MEAN", "IMAGENET_STD"]

#: Per-channel (RGB) mean of ImageNet images scaled to [0, 1], for ``mean=``.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: Per-channel (RGB) standard deviation of ImageNet images scaled to [0, 1], for ``std=``.
IMAGENET_STD = (0.229, 0.224, 0.225)


def _size_pair(value, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_positive_int(value, name)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(check_positive_int(v, name) for v in value)
    raise InvalidParameterError(
        f"{name} must be an int (shorter side) or a (width, height) pair, got {value!r}."
    )


def image_transform(resize=None, crop=None, mean=None, std=None):
    """Build the transform that turns a decoded HWC uint8 image into a CHW float32 array.

    Parameters
    ----------
    resize : int or (int, int), default=None
        An int resizes the shorter side to that many pixels, keeping the aspect ratio; a
        ``(width, height)`` pair resizes to exactly that size. None keeps the size.
    crop : int or (int, int), default=None
        Centre crop to this size (an int gives a square) after resizing.
    mean, std : sequence of float, default=None
        Per-channel mean and standard deviation, applied after scaling pixels to [0, 1].
        Both or neither.

    Returns
    -------
    callable
        Takes an ``mx.nd.NDArray`` image (H, W, C) uint8, returns an ``mx.nd.NDArray`` (C, H, W)
        float32.

    Examples
    --------
    >>> import mxnet as mx
    >>> t = image_transform(resize=10, crop=8, mean=(0.5,), std=(0.5,))
    >>> t(mx.nd.zeros((12, 16, 1), dtype='uint8')).shape
    (1, 8, 8)
    """
    if (mean is None) != (std is None):
        raise InvalidParameterError("Give both mean and std for normalisation, or neither.")
    steps = []
    if resize is not None:
        size = _size_pair(resize, "resize")
        steps.append(T.Resize(size, keep_ratio=isinstance(size, int)))
    if crop is not None:
        steps.append(T.CenterCrop(_size_pair(crop, "crop")))
    steps.append(T.ToTensor())
    if mean is not None:
        if len(mean) != len(std):
            raise InvalidParameterError(
                f"mean has {len(mean)} channels but std has {len(std)}; give one value per "
                f"channel in both."
            )
        if any(s <= 0 for s in std):
            raise InvalidParameterError(f"std must be positive in every channel, got {std!r}.")
        steps.append(T.Normalize(tuple(float(m) for m in mean), tuple(float(s) for s in std)))
    return T.Compose(steps)
