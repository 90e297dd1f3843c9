"""glibc's allocator and CPU tensors: keep freed memory for reuse instead of handing it back to the OS.

By default glibc serves every allocation above a (dynamic, at most 32 MiB) threshold with a fresh ``mmap`` and
unmaps it on free, and trims the top of its heap after frees. A network step on the CPU frees and re-allocates
the same feature maps (megabytes to gigabytes) every iteration, so each iteration page-faults its whole working
set again, which can cost more than the arithmetic of an elementwise op (numbers in docs/speed.md).

:func:`keep_freed_memory_default` raises both thresholds with ``mallopt``; the plugin's commands call it at
start (:func:`sfmnet_plugin.utils.cpu_tuning.apply_process_settings`), importing the library does not. The
cost is memory the process keeps after its peak (a higher peak RSS, in docs/speed.md).
It only sets a default: ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``glibc.malloc`` tunables in
the environment win, ``SFMNET_RETURN_FREED_MEMORY=1`` switches it off, and nothing happens outside
Linux/glibc. Forked children (DataLoader workers) inherit the setting; spawned ones (torchrun ranks) run the
launcher, which applies it again.
"""
import ctypes
import os
import sys

OPT_OUT_VARIABLE = 'SFMNET_RETURN_FREED_MEMORY'
USER_SETTINGS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
LARGEST_THRESHOLD = 2**31 - 1  # mallopt takes an int: blocks up to 2 GiB come from the reusable heap


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
