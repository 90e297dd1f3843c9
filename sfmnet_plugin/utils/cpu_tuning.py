"""The plugin's process-wide CPU settings, applied by its entry points, never by ``import sfmnet_plugin``.

Two settings make CPU training faster, and both change the whole process, so a program that only imports the
library (to use ``FaceRestorer`` inside its own application, say) keeps glibc's and libgomp's defaults:

* glibc keeps freed memory for reuse (:mod:`sfmnet_plugin.utils.cpu_memory`): ``mallopt`` works at any time;
* torch's idle OpenMP threads spin briefly before they sleep (``GOMP_SPINCOUNT``,
  :mod:`sfmnet_plugin.utils.cpu_threads`): libgomp reads the variable once, when ``import torch`` loads it.

Who applies them:

* ``python sfmnet_plugin/train.py`` / ``test.py`` and ``python basicsr/train.py`` / ``test.py`` set the
  OpenMP default before anything imports torch, so it takes effect at no cost;
* ``sfmnet-train`` / ``sfmnet-test`` and ``python -m sfmnet_plugin.train`` have imported torch (through the
  package) before their ``main`` runs: they call :func:`apply_process_settings` with ``restart=True``, which
  re-executes the command once, with the variable set, before any run starts (a second start of the
  interpreter; only when the user chose no OpenMP wait setting, and never twice);
* the other console tools (``sfmnet-infer``, ``-restore``, ``-export``, ``-benchmark``, ``-demo``,
  ``-convert-official``) call it without a restart: the allocator setting applies, the OpenMP default only
  reaches the processes they start (the demo's training steps are launchers and get it anyway). Their work is
  a few large operators, where spinning matters little; set ``GOMP_SPINCOUNT`` yourself to bound it there too.

A library user opts in with one call, best before importing torch (the OpenMP default then takes effect)::

    from sfmnet_plugin.utils.cpu_tuning import apply_process_settings
    apply_process_settings()
"""
import os
import sys

from sfmnet_plugin.utils import cpu_memory, cpu_threads


def apply_process_settings(restart=False, environ=os.environ, modules=sys.modules):
    """Let glibc keep freed memory and bound libgomp's spinning, unless the user chose otherwise (see the modules).

    The OpenMP default takes effect when torch is not imported yet. Otherwise, with ``restart=True`` (entry
    points that own the process's command line), the process re-executes its own command line
    (``sys.orig_argv``) once with ``GOMP_SPINCOUNT`` set; this call does not return then. Without a restart the
    variable is still set, for the processes this one starts.
    """
    cpu_memory.keep_freed_memory_default(environ)
    if not cpu_threads.openmp_wait_is_default(environ):
        return  # the user's setting, or already applied (also after the restart below)
    torch_loaded = 'torch' in modules
    environ[cpu_threads.SPIN_COUNT_VARIABLE] = cpu_threads.DEFAULT_SPIN_COUNT
    if torch_loaded and restart and len(sys.orig_argv) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
