"""CPU threads that share a machine well, and a thread count that keeps CPU results reproducible.

Why CPU training crawled on a shared machine: torch's CPU kernels run on GNU OpenMP (the
``libgomp.so.1`` shipped in ``torch/lib``). Every operator is a parallel region that ends at a
barrier; by default a libgomp thread that reaches a barrier or finishes its share busy-waits
(spins ~300,000 times) before it sleeps. With two threads on two cores and one other busy process,
three runnable threads share two cores: our spinning threads burn the time slices that the thread
still holding work needs, and the tiny network's thousands of small regions per step each pay it
(``benchmarks/bench_threads.py`` measures it; the numbers are in docs/speed.md).

``GOMP_SPINCOUNT=10000`` bounds that spinning to a few microseconds before a waiting thread sleeps: on a
quiet machine that is as fast as the default, while ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) makes every
region pay a wake-up; beside busy processes it avoids the default's collapse (numbers in docs/speed.md).
libgomp reads these variables once, when torch loads it, so the plugin's entry points set the default before
torch is imported, or restart once with it (:mod:`sfmnet_plugin.utils.cpu_tuning`); importing the library
sets nothing. It is only a default: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in the environment wins. This
module needs only the standard library, so the script launchers run it by path, before the package (and
torch) is imported.

The thread count is a numerical setting, not only a speed one: oneDNN splits convolutions
differently for different thread counts, so 1 and 2 threads give results that differ in the last
bit, which training amplifies. It is therefore never chosen from the machine's current load: torch
uses ``$OMP_NUM_THREADS`` or every core, ``sfmnet-demo`` a fixed ``--threads``, and
:func:`busy_machine_warning` only says when other processes compete for the cores.
"""
import os
import sys
import time

WAIT_VARIABLES = ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')  # either one, set by the user, decides
SPIN_COUNT_VARIABLE = 'GOMP_SPINCOUNT'
DEFAULT_SPIN_COUNT = '10000'


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

    The one-minute load average would count this process's own recent work (the demo's face gathering just
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
