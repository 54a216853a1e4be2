"""A bounded in-memory cache of extracted features, so that several heads (or repeated fits)
on the same data pay for extraction once.

Keys are the source model's SHA-256, the layers, pooling and precision, and a SHA-256 of the
input array's bytes, shape and dtype: a cached entry is only ever reused for identical
inputs to an identical network. Only numpy-array inputs are cached (iterators and image
folders have no cheap, reliable fingerprint).
"""
import hashlib
import logging
import threading
from collections import OrderedDict

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["FeatureCache", "default_cache", "array_fingerprint"]


def array_fingerprint(X):
    """SHA-256 of a numpy array's dtype, shape and bytes (None for other inputs)."""
    if not isinstance(X, np.ndarray):
        return None
    digest = hashlib.sha256(f"{X.dtype.str}:{X.shape}".encode())
    digest.update(memoryview(np.ascontiguousarray(X)).cast("B"))
    return digest.hexdigest()


class FeatureCache:
    """Least-recently-used cache of feature dicts, bounded by total bytes.

    Parameters
    ----------
    max_bytes : int, default=2**30
        Entries are evicted, oldest use first, once the cached arrays exceed this.

    Examples
    --------
    >>> cache = FeatureCache(max_bytes=1000)
    >>> cache.put(('k',), {'a': np.zeros(10)})
    >>> cache.get(('k',))['a'].shape
    (10,)
    """

    def __init__(self, max_bytes=2**30):
        self.max_bytes = int(max_bytes)
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        """Return the cached dict for ``key`` (read-only arrays) or None."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
            return None

    def put(self, key, features):
        """Store ``features`` (dict of arrays) under ``key``, evicting old entries if needed."""
        size = sum(np.asarray(a).nbytes for a in features.values())
        if size > self.max_bytes:
            return
        frozen = {}
        for layer, arr in features.items():
            arr = np.array(arr, copy=True)
            arr.setflags(write=False)  # callers share entries: nobody may change them
            frozen[layer] = arr
        with self._lock:
            self._entries[key] = frozen
            self._entries.move_to_end(key)
            while sum(sum(a.nbytes for a in e.values()) for e in self._entries.values()) \
                    > self.max_bytes:
                self._entries.popitem(last=False)

    def clear(self):
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self):
        return len(self._entries)


#: The process-wide cache used by FeatureExtractor and the repurposers.
default_cache = FeatureCache()
