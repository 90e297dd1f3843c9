"""sfmnet-plugin: face super-resolution (SFMNet and its family) as BasicSR components.

Importing this package applies the basicsr 1.4.2 compatibility fixes (:mod:`sfmnet_plugin.compat`)
and registers every architecture, dataset, loss, model and metric it ships in BasicSR's
registries, so ``type: SFMNet`` (and the rest) can be used in any BasicSR option file. It changes
nothing else in the process: the CPU settings the plugin's commands use (glibc keeping freed memory,
a bounded OpenMP spin) are one opt-in call, :func:`sfmnet_plugin.utils.process_settings.apply_process_settings`.
"""
from sfmnet_plugin import compat

compat.apply_all()

from sfmnet_plugin import archs, data, losses, metrics, models  # noqa: E402  (registration by import)
from sfmnet_plugin.version import __version__  # noqa: E402

__all__ = ['archs', 'data', 'losses', 'metrics', 'models', '__version__']
