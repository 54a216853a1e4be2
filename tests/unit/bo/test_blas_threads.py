"""Suggestions do not depend on the BLAS thread count (:mod:`repurpose.bo._threads`).

Without the one-thread limit, the study below made the same 8 suggestions with 1 and with 2
OpenBLAS threads and then diverged (found on this project's 2-core machine); a study resumed in
a process whose thread count had changed then no longer matched the uninterrupted one.
"""
import threading

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from repurpose.bo import BayesianOptimizer, Real, SearchSpace, minimize
from repurpose.bo._threads import one_blas_thread


def _blas_threads():
    # numpy's and scipy's OpenBLAS (pthreads) hold one count for the process. MXNet's, loaded
    # by the tests' conftest, are an OpenMP build (a count per thread) and a single-threaded one.
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas" and lib.get("threading_layer") == "pthreads"]


def _objective(p):
    x = np.array([p["a"], p["b"], p["c"]])
    return float(np.sum((x - 0.3) ** 2) + np.sin(5 * p["a"]))


SPACE = SearchSpace({"a": Real(-1, 1), "b": Real(-1, 1), "c": Real(-1, 1)})


def test_the_same_suggestions_with_one_and_with_two_blas_threads():
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            history = minimize(_objective, SPACE, 12, seed=0).history
        runs.append([(t.params, t.value) for t in history])
    assert runs[0] == runs[1]


def test_ask_gives_the_thread_count_back():
    opt = BayesianOptimizer(SPACE, seed=0, n_initial=3)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        for _ in range(5):
            params = opt.ask()
            opt.tell(params, _objective(params))
        assert _blas_threads() == before


def test_the_limit_holds_inside_and_is_undone_after_the_last_of_nested_blocks():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with one_blas_thread():
            assert set(_blas_threads()) == {1}
            with one_blas_thread():
                assert set(_blas_threads()) == {1}
            assert set(_blas_threads()) == {1}  # the outer block still runs
        assert _blas_threads() == before


def _study(seed, n=9):
    opt = BayesianOptimizer(SPACE, seed=seed, n_initial=3)
    for _ in range(n):
        params = opt.ask()
        opt.tell(params, _objective(params))
    return [t.params for t in opt.trials]


def test_optimisers_asking_in_two_threads_make_their_own_suggestions_and_restore_the_count():
    # No limit of the main thread's here: while one is set, threadpoolctl 3.8+ ignores the
    # limits other threads set (see repurpose/bo/_threads.py).
    alone = [_study(seed) for seed in (0, 1)]
    before = _blas_threads()
    together = [None, None]

    def work(i):
        together[i] = _study(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert together == alone
    assert _blas_threads() == before


def test_a_suggestion_in_a_worker_thread_leaves_the_caller_free_to_set_limits():
    # threadpoolctl 3.8+ lets one thread at a time control OpenBLAS: asking from a thread that
    # stays alive must not keep that control, or the main thread's own limits do nothing.
    asked, done = threading.Event(), threading.Event()

    def worker():
        _study(0, n=5)
        asked.set()
        done.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert asked.wait(60)
        before = _blas_threads()
        for limit in (1, 2):  # both, so one of them differs from the count before
            with threadpool_limits(limits=limit, user_api="blas"):
                assert set(_blas_threads()) == {limit}
            assert _blas_threads() == before
    finally:
        done.set()
        thread.join(10)


def test_an_exception_inside_still_restores_the_count():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        try:
            with one_blas_thread():
                raise KeyError("x")
        except KeyError:
            pass
        assert _blas_threads() == before
