"""Dask cluster plumbing shared by sharded extraction and parallel tuning.

Connect to a scheduler (failing fast, naming the address), wait for its workers, and check
that every worker imports this version of repurpose (naming the ones that do not). Dask is
optional (``pip install -c constraints.txt '.[dask]'`` from a checkout): ``distributed`` is
imported inside the functions, never when this module is imported.

Used by :mod:`repurpose.features._sharded` (``client=`` of
:func:`~repurpose.features.extract_to_store`) and :mod:`repurpose.bo.parallel` (``client=`` of
:func:`~repurpose.bo.minimize`); both raise :class:`~repurpose.exceptions.ClusterError`.
"""
import asyncio
import concurrent.futures
import logging
import socket

from ._version import __version__
from .exceptions import ClusterError, InvalidParameterError

logger = logging.getLogger(__name__)

__all__ = ["CONNECT_TIMEOUT", "WORKER_TIMEOUT", "import_distributed", "connect_scheduler",
           "worker_problems", "check_workers"]

#: Seconds :func:`connect_scheduler` waits for a scheduler to answer.
CONNECT_TIMEOUT = 5.0
#: Seconds :func:`check_workers` waits for a first worker when the cluster has none.
WORKER_TIMEOUT = 10.0


def import_distributed():
    """The ``distributed`` module, or an ImportError saying how to install it.

    Returns
    -------
    module

    Raises
    ------
    ImportError
        If ``distributed`` is not installed.

    Examples
    --------
    >>> import_distributed().__name__  # doctest: +SKIP
    'distributed'
    """
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"Running on a Dask cluster needs the 'distributed' package ({err}). Install it "
            f"with pip install -c constraints.txt '.[dask]' from a checkout of "
            f"repurpose-mxnet, or run in this process (client=None)."
        ) from err
    return distributed


def connect_scheduler(address, timeout=None):
    """A ``distributed.Client`` connected to the scheduler at ``address``, failing fast.

    Before a client is made, the address is probed: a TCP connection (refused at once when
    nothing listens there), then Dask's ``identity`` handshake. So an address where nothing
    answers, or where something that is not a Dask scheduler answers, is an error at once,
    and no half-made client is left to wait for its own shutdown.

    Parameters
    ----------
    address : str
        The scheduler, e.g. ``'tcp://10.0.0.5:8786'`` (what ``dask scheduler`` prints).
    timeout : float, default=None
        Seconds to wait for it to answer; None is :data:`CONNECT_TIMEOUT` (5 s).

    Returns
    -------
    distributed.Client
        Not set as the default client; close it (or use it in a ``with`` block) when done.

    Raises
    ------
    InvalidParameterError
        If ``address`` is not an address.
    ClusterError
        If no scheduler answers within ``timeout`` seconds (or what answers does not speak
        Dask's protocol); the message names the address, what happened and what to check.
        It is also a ``ConnectionError``.
    ImportError
        If ``distributed`` is not installed.

    Examples
    --------
    >>> connect_scheduler('tcp://127.0.0.1:1', timeout=0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ClusterError: No Dask scheduler answered at 'tcp://127.0.0.1:1' ...
    """
    distributed = import_distributed()
    if not isinstance(address, str) or not address.strip():
        raise InvalidParameterError(
            f"The scheduler address must be a string like 'tcp://HOST:8786', got {address!r}.")
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        reason = _probe(distributed, address, timeout)
    except ValueError as err:
        raise InvalidParameterError(
            f"{address!r} is not a Dask scheduler address ({err}). Give it as "
            f"tcp://HOST:PORT, as 'dask scheduler' prints it.") from None
    if reason is None:
        try:
            return distributed.Client(address, timeout=timeout, set_as_default=False)
        except ValueError as err:
            raise InvalidParameterError(
                f"{address!r} is not a Dask scheduler address ({err}). Give it as "
                f"tcp://HOST:PORT, as 'dask scheduler' prints it.") from err
        except Exception as err:  # noqa: BLE001 - it answered the probe, then failed
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no reply'}"
    raise ClusterError(
        f"No Dask scheduler answered at {address!r} within {timeout:g} s ({reason}). Start "
        f"one ('dask scheduler', then 'dask worker ADDRESS' on each machine), or check the "
        f"address and that its port is reachable from here.")


def _probe(distributed, address, timeout):
    """None if a Dask scheduler answers at ``address`` within ``timeout`` seconds, else why
    not, in a few words; ValueError for what is not an address."""
    scheme, location = distributed.comm.parse_address(address)
    if scheme not in ("tcp", "tls"):
        return None  # inproc://, ucx://, ...: the client says
    host, port = distributed.comm.parse_host_port(location, default_port=8786)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on port {port} of {host}"
    except socket.gaierror as err:
        return f"unknown host {host!r}: {err.strerror or err}"
    except socket.timeout:
        return f"no reply from {host}:{port}"
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    if scheme == "tls":
        return None  # the handshake needs the client's certificates: the client does it

    async def identity():
        comm = await distributed.comm.connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def handshake():  # its own event loop, in its own thread: callers may run one already
        return asyncio.run(asyncio.wait_for(identity(), timeout))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            answer = pool.submit(handshake).result()
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
            return f"{host}:{port} accepted a connection but said nothing"
        except Exception as err:  # noqa: BLE001 - garbage read as Dask's framing, and more
            logger.debug("The Dask handshake with %s failed: %s: %s", address,
                         type(err).__name__, err)
            return f"what answers at {host}:{port} does not speak Dask's protocol"
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        return f"what answers at {host}:{port} is not a Dask scheduler (it is a {kind})"
    return None


def _version_probe():
    # A local function: cloudpickle sends it by value, so it runs on workers that cannot
    # import repurpose (and then says so) instead of failing to unpickle.
    def probe():
        try:  # importing repurpose._version imports the whole package first, as a task would
            import repurpose._version as installed
        except Exception as err:  # noqa: BLE001 - reported, not raised, on the worker
            return None, f"{type(err).__name__}: {err}"
        return str(getattr(installed, "__version__", "unknown")), None
    return probe


def worker_problems(found, version=__version__):
    """The workers of ``found`` that cannot run this repurpose, as ``'address: what'``.

    Parameters
    ----------
    found : dict
        Worker address -> ``(version, error)`` as probed on that worker, or the exception
        the probe raised there.
    version : str, default=repurpose.__version__
        The version every worker must import.

    Returns
    -------
    list of str
        One entry per bad worker, in address order; empty when all are fine.

    Examples
    --------
    >>> found = {'tcp://a:1': ('0.1.0', None), 'tcp://b:1': ('0.0.9', None),
    ...          'tcp://c:1': (None, "ModuleNotFoundError: No module named 'repurpose'")}
    >>> for problem in worker_problems(found, version='0.1.0'):
    ...     print(problem)
    tcp://b:1: repurpose 0.0.9
    tcp://c:1: no repurpose (ModuleNotFoundError: No module named 'repurpose')
    """
    problems = []
    for address in sorted(found):
        answer = found[address]
        if isinstance(answer, BaseException):  # the probe itself failed there
            problems.append(f"{address}: the check failed ({type(answer).__name__}: "
                            f"{answer})")
            continue
        worker_version, error = answer
        if error is not None:
            problems.append(f"{address}: no repurpose ({error})")
        elif worker_version != version:
            problems.append(f"{address}: repurpose {worker_version}")
    return problems


def check_workers(client, timeout=None):
    """Check that every worker of a Dask ``client`` imports this version of repurpose.

    Parameters
    ----------
    client : distributed.Client
    timeout : float, default=None
        Seconds to wait for a first worker when the cluster has none; None is
        :data:`WORKER_TIMEOUT` (10 s).

    Returns
    -------
    int
        The number of worker threads (tasks the cluster runs at once).

    Raises
    ------
    ClusterError
        If the cluster has no workers (after waiting), or naming each worker that lacks
        repurpose or has another version of it. It is also a ``RuntimeError``.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> check_workers(Client(LocalCluster(n_workers=2, threads_per_worker=1)))  # doctest: +SKIP
    2
    """
    timeout = WORKER_TIMEOUT if timeout is None else timeout
    address = client.scheduler.address
    if not client.nthreads():
        try:  # a cluster that is starting up: give its workers a moment to join
            client.wait_for_workers(1, timeout=timeout)
        except Exception as err:  # noqa: BLE001 - TimeoutError (Dask's or the builtin)
            raise ClusterError(
                f"The Dask cluster at {address!r} has no workers (waited {timeout:g} s). "
                f"Start some with 'dask worker {address}'.") from err
    found = client.run(_version_probe(), on_error="return")
    problems = worker_problems(found)
    if problems:
        raise ClusterError(
            f"{len(problems)} of {len(found)} Dask workers cannot run repurpose "
            f"{__version__}: {'; '.join(problems[:6])}{' ...' if len(problems) > 6 else ''}. "
            f"Install repurpose-mxnet {__version__} (and its dependencies) in the workers' "
            f"environment, from the same checkout of repurpose-mxnet (pip install -c "
            f"constraints.txt '.[dask]'), then restart them.")
    return sum(client.nthreads().values())
