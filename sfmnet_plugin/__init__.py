"""sfmnet-plugin: face super-resolution (SFMNet and its family) as BasicSR components.

Importing this package registers every architecture, dataset, loss, model and metric it ships in BasicSR's
registries, so ``type: SFMNet`` (and the rest) can be used in any BasicSR option file, and applies only the fixes
basicsr 1.4.2 needs to import and load safely (:func:`sfmnet_plugin.compat.apply_import_fixes`). It changes how
no other BasicSR model saves, resumes or validates, and no process setting. The plugin's run behaviour (exact
resume, saves on stop signals, atomic and safetensors saves, non-finite guards, ``_base_``, the pre-flight, the
terminal, the OpenMP setting) comes with its launchers; a BasicSR project opts in with one call in its own
``train.py``, :func:`sfmnet_plugin.launch.cli.train_pipeline` (``docs/basicsr_changes.md``).
"""
from sfmnet_plugin import compat

compat.apply_import_fixes()

from sfmnet_plugin import archs, data, losses, metrics, models  # noqa: E402  (registration by import)
from sfmnet_plugin.version import __version__  # noqa: E402

__all__ = ['archs', 'data', 'losses', 'metrics', 'models', '__version__']
