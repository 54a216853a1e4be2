"""One BLAS thread while a suggestion is computed, so that it does not depend on the thread count.

OpenBLAS splits a matrix product between its threads, and where the split falls decides which
of a kernel's code paths (vectorised block or scalar tail) sums each element: the same
product gives results that differ in the last bits with 1 or 2 threads. A Gaussian process
fitted to a few dozen points passes such bits on to the acquisition's maximiser: a
``BayesSearchCV`` run with 1 and with 2 threads made the same first 6 suggestions, then
diverged (C 0.020795198761097183 against 0.020795198761096277, and every later one). So a
resumed study matched the uninterrupted one only while nothing changed the process's BLAS
thread count between them; threadpoolctl's limits, which other libraries set and restore
around their own work, are process-wide, so a limit set by another thread in the middle of a
suggestion was enough to break resume in one process.

Suggestions are computed with the BLAS libraries limited to one thread. It costs nothing
measurable: the products are a few hundred rows by a few hundred columns at most, where a
second thread gains nothing (one suggestion at 100 observations on 2 cores, 2 threads against
1, two rounds: Hartmann-6 0.266-0.276 s against 0.265-0.272 s, mixed_nn 0.200-0.205 s against
0.199-0.208 s, Zakharov-10 0.369-0.371 s against 0.357-0.360 s), and the limit takes about
0.3 ms to set and restore.

numpy's and scipy's OpenBLAS keep one thread count for the whole process, so the limit is
process-wide too, and a module lock lets one suggestion at a time hold it: optimisers asking in
several threads take turns, and each restores the count it found. threadpoolctl (3.8 and
later) lets only one thread at a time set that count; while another thread holds a limit of
its own (a ``with threadpool_limits(...)`` block of the caller's), the limit here does nothing
and the suggestion is computed with that thread's count.
"""
import contextlib
import threading

from threadpoolctl import threadpool_limits

# Reentrant: a suggestion computed inside another (nested asks) does not wait for itself.
_LOCK = threading.RLock()


@contextlib.contextmanager
def one_blas_thread():
    """Limit the BLAS libraries to one thread inside the ``with`` block.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     float(np.ones((3, 3)).dot(np.ones(3))[0])
    3.0
    """
    # The context-manager form also gives threadpoolctl's control of OpenBLAS back on exit,
    # so a limit the caller sets later, from any thread, still takes effect.
    with _LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield
