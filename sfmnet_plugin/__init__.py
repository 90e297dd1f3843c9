"""sfmnet-plugin: face super-resolution (SFMNet and its family) as BasicSR components.

Importing this package applies the basicsr 1.4.2 compatibility fixes (:mod:`sfmnet_plugin.compat`)
and registers every architecture, dataset, loss, model and metric it ships in BasicSR's
registries, so ``type: SFMNet`` (and the rest) can be used in any BasicSR option file. When it is
imported before torch, it also bounds how long torch's idle OpenMP threads spin before they sleep
(``GOMP_SPINCOUNT=10000`` unless a wait setting is given; see :mod:`sfmnet_plugin.utils.cpu_threads`), and it
lets glibc keep freed memory for reuse, which makes CPU steps much faster (unless the user set the
allocator; see :mod:`sfmnet_plugin.utils.cpu_memory`).
"""
from sfmnet_plugin.utils import cpu_memory, cpu_threads

cpu_threads.set_openmp_wait_policy_default()  # before torch loads libgomp, which reads it once
cpu_memory.keep_freed_memory_default()

from sfmnet_plugin import compat  # noqa: E402

compat.apply_all()

from sfmnet_plugin import archs, data, losses, metrics, models  # noqa: E402  (registration by import)
from sfmnet_plugin.version import __version__  # noqa: E402

__all__ = ['archs', 'data', 'losses', 'metrics', 'models', '__version__']
