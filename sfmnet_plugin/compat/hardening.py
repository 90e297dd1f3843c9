"""Safe loading in basicsr 1.4.2's own code paths: weights-only ``torch.load`` and a safe YAML loader."""
import importlib
import types
from collections import OrderedDict

from sfmnet_plugin.compat.changes import replace_for_process


class _WeightsOnlyTorch(types.ModuleType):
    """``torch`` as seen from a BasicSR module: the same, except that ``load`` never unpickles code (and reads
    ``.safetensors`` networks too)."""

    def __init__(self):
        super().__init__('torch')

    def __getattr__(self, name):
        import torch

        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **_ignored):  # weights_only and pickle options are not the caller's to choose
        from sfmnet_plugin.checkpoints.io import load_checkpoint_file

        return load_checkpoint_file(f, map_location=map_location)


# Every basicsr 1.4.2 module that calls torch.load (a test checks the list against basicsr's source).
BASICSR_TORCH_LOAD_MODULES = (
    'basicsr.models.base_model', 'basicsr.train', 'basicsr.archs.vgg_arch', 'basicsr.archs.spynet_arch',
    'basicsr.archs.basicvsr_arch', 'basicsr.archs.tof_arch', 'basicsr.archs.dfdnet_arch', 'basicsr.archs.inception',
)


def patch_safe_torch_load():
    """Make every ``torch.load`` in BasicSR load with ``weights_only=True`` and fail with the file's name.

    BasicSR's ``load_network`` (``path.pretrain_network_*``, resumed networks) and its architectures'
    pretrained-weight loaders call ``torch.load`` without ``weights_only``; on torch < 2.6, or with
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` set, a crafted ``.pth`` would run code. Their module-level
    name ``torch`` is rebound to a proxy whose ``load`` is
    :func:`sfmnet_plugin.checkpoints.io.load_checkpoint_file`: a weights-only ``torch.load``, or the
    ``safetensors`` reader for a safetensors file (so ``path.pretrain_network_*`` and resume take either).
    """
    proxy = _WeightsOnlyTorch()
    for module_name in BASICSR_TORCH_LOAD_MODULES:
        replace_for_process(importlib.import_module(module_name), 'torch', proxy)


def patch_safe_yaml():
    """Give BasicSR's option parser a safe YAML loader.

    ``parse_options`` reads ``-opt`` with ``yaml.load(f, Loader=ordered_yaml()[0])``, PyYAML's full
    loader, which builds Python objects (``!!python/object/apply:os.system``). ``ordered_yaml`` now
    returns a ``SafeLoader`` that keeps mappings ordered.
    """
    import basicsr.utils.options as options

    from sfmnet_plugin.utils.safe_loading import SafeOrderedLoader

    try:
        from yaml import CDumper as Dumper
    except ImportError:
        from yaml import Dumper

    def ordered_yaml():
        Dumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))
        return SafeOrderedLoader, Dumper

    replace_for_process(options, 'ordered_yaml', ordered_yaml)
