"""Run independent tasks in this process, in worker processes, or on a Dask cluster.

``run_tasks(function, tasks, shared, jobs=..., client=...)`` calls
``function(task, shared)`` for every task and yields the results as they
finish, in batches of ``(index, result)``. ``shared`` (read-only data every
task needs, e.g. the videos) is sent to every worker once: through the worker
processes' initializer, or ``client.scatter(..., broadcast=True)`` on Dask.

Workers use one BLAS thread each (the tasks are the parallelism) and ignore
Ctrl-C, which the parent handles: it stops every worker it started. A worker
process started here also watches its parent and exits when the parent is gone
(killed with SIGKILL, say), so no worker outlives the run. Dask's own workers
(``dask worker`` or a ``LocalCluster``) end with their nanny or scheduler.

``distributed`` is optional (``pip install distributed``, the ``cluster`` extra); it is imported
only when a Dask client is asked for.
"""
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time

from threadpoolctl import threadpool_limits

class NoWorkersError(RuntimeError):
    """The Dask cluster has no worker to run the tasks (a RuntimeError).

    Examples
    --------
    >>> from rpmref.balls.parallel import NoWorkersError
    >>> issubclass(NoWorkersError, RuntimeError)
    True
    """


#: seconds between the parent's checks for finished tasks (and progress refreshes)
POLL_SECONDS = 0.25
#: seconds between a worker's checks that its parent is still alive
PARENT_CHECK_SECONDS = 0.5
#: how ``rpmref`` with Dask is installed, for error messages
CLUSTER_INSTALL = "pip install distributed"


def run_tasks(function, tasks, shared, jobs=1, client=None, on_wait=None):
    """Yield lists of ``(index, function(tasks[index], shared))`` as tasks finish.

    If a task raises, no further task starts; the tasks already running finish
    and are yielded, then the first exception is raised. If the caller stops
    (an exception such as KeyboardInterrupt, or closing the generator), every
    worker process started here is terminated at once and Dask tasks not yet
    finished are cancelled.

    Parameters
    ----------
    function : callable
        ``function(task, shared)``, a module-level function (worker processes
        import it by name).
    tasks : list
        Picklable task descriptions.
    shared : object
        Picklable data for every task, sent once per worker.
    jobs : int, default 1
        Worker processes ('spawn' start method, one BLAS thread each); 1 runs
        every task here, in order, with the BLAS threads as they are.
    client : distributed.Client, optional
        Submit every task to its cluster instead (``jobs`` is then ignored).
    on_wait : callable, optional
        ``on_wait()``, called about every POLL_SECONDS while no task has finished
        (e.g. to refresh a progress bar).

    Yields
    ------
    list of tuple
        Batches of (task index, result), in the order the tasks finish.

    Examples
    --------
    >>> import operator
    >>> from rpmref.balls.parallel import run_tasks
    >>> list(run_tasks(operator.add, [1, 2, 3], 10))
    [[(0, 11)], [(1, 12)], [(2, 13)]]
    """
    if client is not None:
        yield from _run_on_dask(function, tasks, shared, client, on_wait)
    elif jobs == 1:
        for index, task in enumerate(tasks):
            yield [(index, function(task, shared))]
    else:
        yield from _run_in_processes(function, tasks, shared, jobs, on_wait)


def describe(jobs=1, client=None):
    """Where the tasks run, for log lines: 'this process', '2 worker processes', ...

    Parameters
    ----------
    jobs : int, default 1
        Worker processes.
    client : distributed.Client, optional
        A Dask client (then its scheduler address and worker count are named).

    Returns
    -------
    str
        The description.

    Examples
    --------
    >>> from rpmref.balls.parallel import describe
    >>> describe(), describe(jobs=2)
    ('this process', '2 worker processes')
    """
    if client is not None:
        n_workers = len(dask_workers(client))
        return (f"Dask cluster {client.scheduler.address} ({n_workers} "
                f"worker{'' if n_workers == 1 else 's'})")
    return "this process" if jobs == 1 else f"{jobs} worker processes"


# --------------------------------------------------------------------------
# worker processes


def _run_in_processes(function, tasks, shared, jobs, on_wait):
    # the workers are started (by the submits) with Ctrl-C held back: they inherit the
    # blocked SIGINT, so one pressed while they import is dropped by _start_worker instead
    # of breaking them with a traceback, and the parent sees it only once every worker it
    # started is in the pool's list (so _stop_workers reaches each of them)
    with _ctrl_c_held():
        pool = concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(shared, os.getpid()))
    finished = False
    try:
        with _ctrl_c_held():
            futures = {pool.submit(_call_with_shared, function, task): index
                       for index, task in enumerate(tasks)}
        yield from _collect(futures, _wait_concurrent, on_wait)
        finished = True
    finally:
        with _ctrl_c_held():  # a second Ctrl-C does not cut the clean-up short
            if not finished:  # Ctrl-C, a failed task or the caller stopped: stop now
                _stop_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _ctrl_c_held():
    """Hold SIGINT back while the block runs; a Ctrl-C pressed meanwhile raises
    KeyboardInterrupt when it ends. Processes started in the block begin with SIGINT
    blocked. A no-op outside the main thread or without ``pthread_sigmask``."""
    if (not hasattr(signal, "pthread_sigmask")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    pressed = []
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # another thread may still take the signal: note it, raise later
        signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if callable(handler):
            signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending Ctrl-C arrives here
    if pressed and callable(handler):
        handler(signal.SIGINT, None)


_SHARED = {}  # a worker process's shared data (set by _start_worker)


def _start_worker(shared, parent_pid):
    """Initializer of a worker process: shared data, 1 BLAS thread, no Ctrl-C, watchdog."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    if hasattr(signal, "pthread_sigmask"):  # started with it blocked (_ctrl_c_held): a
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # pending one is dropped
    watch_parent(parent_pid)
    threadpool_limits(limits=1, user_api="blas")
    # tqdm's default lock is a multiprocessing semaphore, which a worker terminated
    # mid-task would leak (the resource tracker then warns); workers draw no bars
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())
    _SHARED["data"] = shared


def _call_with_shared(function, task):
    return function(task, _SHARED["data"])


def watch_parent(parent_pid, interval=PARENT_CHECK_SECONDS):
    r"""Start a daemon thread that ends this process when ``parent_pid`` is no longer its parent.

    That is, when the parent died and the process was re-parented. Portable
    (``os.getppid``), unlike Linux's prctl(PR_SET_PDEATHSIG).

    Parameters
    ----------
    parent_pid : int
        The parent's process id.
    interval : float, default ``PARENT_CHECK_SECONDS``
        Seconds between checks.

    Returns
    -------
    None

    Examples
    --------
    In a child process (never in this one: the watchdog ends its process):

    >>> import os, subprocess, sys
    >>> code = ("import os, threading; from rpmref.balls.parallel import watch_parent; "
    ...         "watch_parent(os.getppid()); print(threading.enumerate()[-1].name)")
    >>> env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    'rpmref-parent-watchdog\n'
    """
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)  # no clean-up: the parent that wanted the result is gone

    threading.Thread(target=watch, name="rpmref-parent-watchdog", daemon=True).start()


def _stop_workers(pool):
    """Terminate a ProcessPoolExecutor's worker processes now (not after their task)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _wait_concurrent(futures, timeout):
    concurrent.futures.wait(futures, timeout=timeout,
                            return_when=concurrent.futures.FIRST_COMPLETED)


# --------------------------------------------------------------------------
# Dask


def import_distributed():
    """The ``distributed`` module, or ImportError saying how to install it.

    Returns
    -------
    module
        ``distributed``.

    Raises
    ------
    ImportError
        If Dask's distributed package is not installed.

    Examples
    --------
    >>> from rpmref.balls.parallel import import_distributed
    >>> try:
    ...     name = import_distributed().__name__
    ... except ImportError:
    ...     name = "distributed"
    >>> name
    'distributed'
    """
    try:
        import distributed
    except ImportError:
        raise ImportError(f"Dask's distributed package is not installed: "
                          f"{CLUSTER_INSTALL}") from None
    return distributed


@contextlib.contextmanager
def dask_client(spec, timeout=10.0):
    """Context manager: a ``distributed.Client`` for ``spec``, closed (with its cluster) on exit.

    Parameters
    ----------
    spec : str or distributed.Client
        "local:N" (a LocalCluster of N worker processes with one thread each, on
        the loopback interface; its HTTP server on a free port, not on 8787, which
        another cluster may hold), a scheduler address such as
        "tcp://10.0.0.5:8786", or a Client (yielded as is, not closed).
    timeout : float, default 10.0
        Seconds to wait for the scheduler.

    Yields
    ------
    distributed.Client
        The client.

    Raises
    ------
    ImportError
        Without ``distributed``.
    ValueError
        For "local:N" with N not a positive integer.

    Examples
    --------
    >>> from rpmref.balls.parallel import dask_client
    >>> try:
    ...     with dask_client("local:0"):
    ...         pass
    ... except (ValueError, ImportError) as error:
    ...     print(type(error).__name__ if isinstance(error, ImportError) else error)
    dask must be 'local:N' with N a positive integer, or a scheduler address; got 'local:0'
    """
    distributed = import_distributed()
    if isinstance(spec, distributed.Client):
        yield spec
        return
    n_workers = parse_local(spec)
    with contextlib.ExitStack() as stack:
        if n_workers is not None:
            # the workers run this module's dask_setup first: they ignore Ctrl-C, which
            # reaches this process (that closes the cluster) instead of printing a
            # traceback in every worker
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address="127.0.0.1:0", preload=[__name__]))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            client = stack.enter_context(distributed.Client(spec, timeout=timeout))
        yield client


def dask_setup(worker):
    """Dask preload hook, run in each worker process of a ``local:N`` cluster as it starts:
    ignore SIGINT (a terminal's Ctrl-C goes to the whole process group; the parent handles
    it and closes the cluster), and keep the warnings of the tasks that closing the
    cluster cancels (``distributed.worker.state_machine``) out of the terminal; other
    warnings, such as memory pressure, still show.

    Parameters
    ----------
    worker : distributed.Worker
        The worker starting (not used).

    Returns
    -------
    None

    Examples
    --------
    >>> import signal
    >>> from rpmref.balls.parallel import dask_setup
    >>> before = signal.getsignal(signal.SIGINT)
    >>> dask_setup(worker=None)
    >>> signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    True
    >>> _ = signal.signal(signal.SIGINT, before)
    >>> import logging
    >>> logging.getLogger("distributed.worker.state_machine").setLevel(logging.NOTSET)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


def parse_local(spec):
    """N for "local:N" (N ≥ 1), None for anything else (a scheduler address).

    Parameters
    ----------
    spec : object
        The ``dask`` argument.

    Returns
    -------
    int or None
        The number of local workers.

    Raises
    ------
    ValueError
        For "local:" followed by anything but a positive integer.

    Examples
    --------
    >>> from rpmref.balls.parallel import parse_local
    >>> parse_local("local:4"), parse_local("tcp://10.0.0.5:8786")
    (4, None)
    """
    if not isinstance(spec, str) or not spec.startswith("local:"):
        return None
    count = spec[len("local:"):]
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"dask must be 'local:N' with N a positive integer, or a scheduler "
                         f"address; got {spec!r}")
    return int(count)


def dask_workers(client):
    """{worker address: its number of threads} of the client's cluster.

    Parameters
    ----------
    client : distributed.Client
        A connected client (anything with ``scheduler_info()``).

    Returns
    -------
    dict
        Threads per worker address.

    Examples
    --------
    >>> from rpmref.balls.parallel import dask_workers
    >>> class Client:   # stands in for a distributed.Client
    ...     def scheduler_info(self):
    ...         return {"workers": {"tcp://127.0.0.1:4000": {"nthreads": 1}}}
    >>> dask_workers(Client())
    {'tcp://127.0.0.1:4000': 1}
    """
    return {address: info.get("nthreads", 1)
            for address, info in client.scheduler_info()["workers"].items()}


def _run_on_dask(function, tasks, shared, client, on_wait):
    [shared_future] = client.scatter([shared], broadcast=True)
    futures = {client.submit(_dask_call, function, task, shared_future, pure=False): index
               for index, task in enumerate(tasks)}
    finished = False
    try:
        yield from _collect(futures, _wait_polling, on_wait)
        finished = True
    finally:
        if not finished:
            client.cancel(list(futures))


def _dask_call(function, task, shared):
    """A task on a Dask worker: one BLAS thread while it runs (the worker threads
    are the parallelism; start workers with ``--nthreads 1``)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return function(task, shared)


def _wait_polling(futures, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(f.done() for f in futures):
        time.sleep(min(0.05, timeout))


# --------------------------------------------------------------------------
# collecting results


def _collect(futures, wait, on_wait):
    """Yield batches of (index, result) from {future: index}; see ``run_tasks``."""
    pending = dict(futures)
    failure = None
    while pending:
        done = [f for f in pending if f.done()]
        if not done:
            if on_wait is not None:
                on_wait()
            wait(list(pending), POLL_SECONDS)
            continue
        batch = []
        for future in done:
            index = pending.pop(future)
            if future.cancelled():
                continue
            try:
                batch.append((index, future.result()))
            except Exception as error:  # noqa: BLE001 - re-raised once the running tasks end
                if failure is None:
                    failure = error
                    for other in pending:  # start no more tasks
                        other.cancel()
        if batch:
            yield batch
    if failure is not None:
        raise failure
