"""GPy helpers shared by the GP head (:mod:`repurpose.heads._gp`) and the BO surrogate
(:mod:`repurpose.bo.surrogate`): a lazy import and a scope that silences GPy's and paramz's
harmless warnings. Imports nothing from the rest of the package.
"""
import contextlib
import logging
import warnings

__all__ = ["import_gpy", "quiet_gpy"]


def import_gpy():
    """Import GPy lazily (it costs a second) without its harmless import-time warnings.

    GPy 1.13 opens data files without closing them at import (``ResourceWarning``) and
    uses deprecated numpy/scipy names (``DeprecationWarning``); neither affects results, but
    ``filterwarnings = error`` would turn them into failures.

    Returns
    -------
    module
        The ``GPy`` module.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import GPy
    return GPy


@contextlib.contextmanager
def quiet_gpy():
    """Silence GPy's and paramz's harmless warnings, here only (never globally).

    * paramz 0.9.6 assigns ``ndarray.data`` when it builds parameters, which numpy 1.23
      deprecates (``DeprecationWarning: Assigning the 'data' attribute ...``);
    * paramz's ``Logexp`` transform overflows in ``np.exp`` for large trial steps of the
      optimiser (``RuntimeWarning: overflow encountered in exp``; it clips the result), and
      such steps also give ``invalid value`` / ``divide by zero`` warnings that the
      optimiser handles by rejecting the step;
    * paramz logs that the ``Logistic`` (bounded) transform has no log-Jacobian; none is
      wanted (a prior is meant on the parameter, not on its transform).

    Examples
    --------
    >>> import warnings
    >>> with quiet_gpy():
    ...     warnings.warn("overflow encountered in exp", RuntimeWarning)  # not shown
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Assigning the 'data' attribute",
                                category=DeprecationWarning)
        for message in ("overflow encountered", "invalid value encountered", "divide by zero"):
            warnings.filterwarnings("ignore", message=message, category=RuntimeWarning)
        paramz_logger = logging.getLogger("paramz.transformations")
        level = paramz_logger.level
        paramz_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            paramz_logger.setLevel(level)
