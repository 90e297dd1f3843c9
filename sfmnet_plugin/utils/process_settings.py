"""The plugin's process-wide CPU settings, applied by its entry points, never by ``import sfmnet_plugin``.

Two settings make CPU training faster, and both change the whole process, so a program that only imports the
library (to use ``FaceRestorer`` inside its own application, say) keeps glibc's and libgomp's defaults:

* torch's idle OpenMP threads spin briefly before they sleep (``GOMP_SPINCOUNT``, :func:`apply_process_settings`);
* glibc keeps freed memory for reuse (:func:`keep_freed_memory_default`).

Who applies them:

* every console script (``sfmnet-train``, ``sfmnet-infer``, ...), ``python sfmnet_plugin/train.py`` /
  ``test.py`` and ``python basicsr/train.py`` / ``test.py`` apply them before anything imports torch, so the
  OpenMP default takes effect at no cost: this module needs only the standard library, and those commands run
  it from its file before the package (which imports torch) is imported (the console scripts' command lines,
  ``sfmnet_cli``, through :func:`sfmnet_cli.dispatch.apply_process_settings`);
* ``python -m sfmnet_plugin.train`` / ``test`` (torchrun's and the demo's command) and a BasicSR project's own
  ``train.py`` have imported torch (through the package) before the launcher runs: it calls
  :func:`apply_process_settings` with ``restart=True``, which re-executes the command once, with the variable
  set, before any run starts (a second start of the interpreter; only when the user chose no OpenMP wait
  setting, and never twice).

A library user opts in with one call, best before importing torch (the OpenMP default then takes effect)::

    from sfmnet_plugin.utils.process_settings import apply_process_settings
    apply_process_settings()

OpenMP threads that share a machine well: torch's CPU kernels run on GNU OpenMP (the ``libgomp.so.1`` shipped in
``torch/lib``). Every operator is a parallel region that ends at a barrier; by default a libgomp thread that
reaches a barrier or finishes its share busy-waits (spins ~300,000 times) before it sleeps. With two threads on
two cores and one other busy process, three runnable threads share two cores: our spinning threads burn the time
slices that the thread still holding work needs, and the tiny network's thousands of small regions per step each
pay it (``benchmarks/bench_threads.py`` measures it; the numbers are in docs/speed.md). ``GOMP_SPINCOUNT=10000``
bounds that spinning to a few microseconds before a waiting thread sleeps: on a quiet machine that is as fast as
the default, while ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) makes every region pay a wake-up; beside busy
processes it avoids the default's collapse. libgomp reads these variables once, when torch loads it. It is only a
default: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in the environment wins.

glibc's allocator and CPU tensors: by default glibc serves every allocation above a (dynamic, at most 32 MiB)
threshold with a fresh ``mmap`` and unmaps it on free, and trims the top of its heap after frees. A network step on
the CPU frees and re-allocates the same feature maps (megabytes to gigabytes) every iteration, so each iteration
page-faults its whole working set again, which can cost more than the arithmetic of an elementwise op.
:func:`keep_freed_memory_default` raises both thresholds with ``mallopt``; the cost is memory the process keeps
after its peak (a higher peak RSS; both measured in docs/speed.md). It only sets a default:
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``glibc.malloc`` tunables in the environment win,
``SFMNET_RETURN_FREED_MEMORY=1`` switches it off, and nothing happens outside Linux/glibc. Forked children
(DataLoader workers) inherit the setting; spawned ones (torchrun ranks) run the launcher, which applies it again.

The thread count is a numerical setting, not only a speed one: oneDNN splits convolutions
differently for different thread counts, so 1 and 2 threads give results that differ in the last
bit, which training amplifies. It is therefore never chosen from the machine's current load: torch
uses ``$OMP_NUM_THREADS`` or every core, ``sfmnet-demo`` a fixed ``--threads``, and
:func:`busy_machine_warning` only says when other processes compete for the cores.
"""
import ctypes
import os
import sys
import time

WAIT_VARIABLES = ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')  # either one, set by the user, decides
SPIN_COUNT_VARIABLE = 'GOMP_SPINCOUNT'
DEFAULT_SPIN_COUNT = '10000'

OPT_OUT_VARIABLE = 'SFMNET_RETURN_FREED_MEMORY'
USER_SETTINGS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
LARGEST_THRESHOLD = 2**31 - 1  # mallopt takes an int: blocks up to 2 GiB come from the reusable heap


def openmp_wait_is_default(environ=os.environ):
    """Whether ``environ`` leaves libgomp's wait policy to the plugin (no ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``)."""
    return not any(name in environ for name in WAIT_VARIABLES)


def set_openmp_wait_policy_default(environ=os.environ, modules=sys.modules):
    """Set ``GOMP_SPINCOUNT=10000`` unless a wait setting is in the environment or torch (and its libgomp) is
    already loaded.

    Returns whether the default was set. Child processes (DataLoader workers, torchrun ranks, the demo's
    steps) inherit it.
    """
    if not openmp_wait_is_default(environ) or 'torch' in modules:
        return False
    environ[SPIN_COUNT_VARIABLE] = DEFAULT_SPIN_COUNT
    return True


def available_cpus():
    """CPUs this process may run on (its affinity mask, e.g. under ``taskset`` or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def other_runnable_processes(samples=5, interval=0.02):
    """How many other processes are running or waiting for a CPU now (Linux ``/proc/loadavg``), or None.

    The one-minute system load would count this process's own recent work (the demo's face gathering just
    before training, say) and call a quiet machine busy; the instantaneous runnable count, less this process,
    does not. The median of a few samples smooths short blips.
    """
    counts = []
    for sample in range(samples):
        try:
            with open('/proc/loadavg', encoding='ascii') as f:
                running = int(f.read().split()[3].split('/')[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(max(running - 1, 0))  # the reading process is running itself
        if sample + 1 < samples:
            time.sleep(interval)
    return sorted(counts)[len(counts) // 2]


def busy_machine_warning(num_threads, cpus=None, others=None):
    """A one-line note when other processes already keep the cores busy, or None.

    ``others`` is the number of other runnable processes (default :func:`other_runnable_processes`); with
    ``num_threads`` of our own on ``cpus`` CPUs, more than ``cpus - num_threads`` of them means our threads share
    cores with other work, so steps take longer than on a quiet machine (the results stay the same: the thread
    count, not the load, decides them).
    """
    cpus = cpus or available_cpus()
    if others is None:
        others = other_runnable_processes()
    if others is None or others <= cpus - num_threads:
        return None
    return (f'the machine is busy ({others} other running process{"es" if others != 1 else ""} on {cpus} CPUs, '
            f'{num_threads} thread{"s" if num_threads != 1 else ""} here): they share the cores, so steps take '
            'longer than on a quiet machine; the results do not change.')


def keep_freed_memory_default(environ=os.environ, platform=sys.platform) -> bool:
    """Raise glibc's mmap and trim thresholds unless the user chose otherwise; whether they were raised."""
    if not platform.startswith('linux') or environ.get(OPT_OUT_VARIABLE, '') not in ('', '0'):
        return False
    if any(name in environ for name in USER_SETTINGS) or 'glibc.malloc' in environ.get('GLIBC_TUNABLES', ''):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST_THRESHOLD))


def apply_process_settings(restart=False, environ=os.environ, modules=sys.modules):
    """Let glibc keep freed memory and bound libgomp's spinning, unless the user chose otherwise.

    The OpenMP default takes effect when torch is not imported yet. Otherwise, with ``restart=True`` (entry
    points that own the process's command line), the process re-executes its own command line
    (``sys.orig_argv``) once with ``GOMP_SPINCOUNT`` set; this call does not return then. Without a restart the
    variable is still set, for the processes this one starts.
    """
    keep_freed_memory_default(environ)
    if not openmp_wait_is_default(environ):
        return  # the user's setting, or already applied (also after the restart below)
    environ[SPIN_COUNT_VARIABLE] = DEFAULT_SPIN_COUNT
    if 'torch' in modules and restart and len(sys.orig_argv) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
