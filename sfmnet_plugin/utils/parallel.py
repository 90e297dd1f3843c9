"""An ordered ``map`` over worker processes, for CPU-bound work on many files."""
import multiprocessing
import signal


def parallel_imap(function, items, workers, chunksize=None):
    """``map(function, items)`` in ``workers`` processes (0 or 1: in this process), results in item order.

    ``items`` must be a sized sequence and ``function`` a module-level function (for pickling).
    """
    if workers <= 1:
        yield from map(function, items)
        return
    # Chunks amortise the inter-process traffic; imap still returns results in order.
    chunksize = chunksize or max(1, min(64, len(items) // (workers * 8)))
    # fork (where available) lets workers start without re-importing torch and basicsr.
    start_method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else None
    with multiprocessing.get_context(start_method).Pool(workers, initializer=_leave_ctrl_c_to_the_parent) as pool:
        yield from pool.imap(function, items, chunksize=chunksize)


def _leave_ctrl_c_to_the_parent():
    """Workers ignore Ctrl-C: the parent stops the pool and cleans up, without a traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
