"""Safety for basicsr 1.4.2's own code paths: weights-only torch.load, safe YAML, non-finite guards."""
import importlib
import types
from collections import OrderedDict
from os import path as osp


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


# Every basicsr 1.4.2 module that calls torch.load (tests/utils/test_safe_loading.py checks the list against the
# source).
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
        module = importlib.import_module(module_name)
        if not isinstance(module.torch, _WeightsOnlyTorch):
            module.torch = proxy


def patch_safe_yaml():
    """Give BasicSR's option parser a safe YAML loader.

    ``parse_options`` reads ``-opt`` with ``yaml.load(f, Loader=ordered_yaml()[0])``, PyYAML's full
    loader, which builds Python objects (``!!python/object/apply:os.system``). ``ordered_yaml`` now
    returns a ``SafeLoader`` that keeps mappings ordered, and ``yaml_load`` (newer BasicSR) a safe load.
    """
    import basicsr.utils.options as options

    from sfmnet_plugin.utils.safe_loading import SafeOrderedLoader, load_yaml_file, load_yaml_text

    if getattr(options.ordered_yaml, 'sfmnet_patched', False):
        return
    try:
        from yaml import CDumper as Dumper
    except ImportError:
        from yaml import Dumper

    def ordered_yaml():
        Dumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))
        return SafeOrderedLoader, Dumper

    def yaml_load(f):
        if isinstance(f, str) and osp.isfile(f):
            return load_yaml_file(f, ordered=True)
        return load_yaml_text(f, getattr(f, 'name', '<option text>'), ordered=True)

    ordered_yaml.sfmnet_patched = True
    options.ordered_yaml = ordered_yaml
    options.yaml_load = yaml_load


def patch_nonfinite_guards():
    """Check losses, saved networks and scored outputs for NaN/inf in hooks that every BasicSR model goes through.

    The iteration is recorded from ``update_learning_rate``, which BasicSR's training loop calls
    with it before every ``optimize_parameters``.
    """
    from basicsr.models.base_model import BaseModel
    from basicsr.models.sr_model import SRModel

    from sfmnet_plugin.utils.nonfinite import check_finite_losses, check_finite_network, check_finite_output

    if getattr(BaseModel.reduce_loss_dict, 'sfmnet_patched', False):
        return
    upstream_update_learning_rate = BaseModel.update_learning_rate
    upstream_reduce_loss_dict = BaseModel.reduce_loss_dict
    upstream_save_network = BaseModel.save_network
    upstream_test = SRModel.test

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        self.current_iter = current_iter
        return upstream_update_learning_rate(self, current_iter, warmup_iter)

    def reduce_loss_dict(self, loss_dict):
        check_finite_losses(loss_dict, getattr(self, 'current_iter', '?'))
        return upstream_reduce_loss_dict(self, loss_dict)

    def save_network(self, net, net_label, current_iter, param_key='params'):
        for network in net if isinstance(net, list) else [net]:
            check_finite_network(self.get_bare_model(network), net_label, getattr(self, 'current_iter', current_iter))
        return upstream_save_network(self, net, net_label, current_iter, param_key)

    def test(self):
        upstream_test(self)
        check_finite_output(getattr(self, 'output', None), getattr(self, 'current_iter', None))

    reduce_loss_dict.sfmnet_patched = True
    BaseModel.update_learning_rate = update_learning_rate
    BaseModel.reduce_loss_dict = reduce_loss_dict
    BaseModel.save_network = save_network
    SRModel.test = test


# The folders BasicSR's parse_options puts under a run's own folder; nothing else in ``path`` is a folder.
RUN_FOLDER_KEYS = ('models', 'training_states', 'log', 'visualization')


def patch_make_exp_dirs():
    """Create only the run's own folders: BasicSR's ``make_exp_dirs`` calls ``os.makedirs`` on every ``path`` value
    it does not recognise as a file option, so ``path.network_format: safetensors`` (or a mistyped key) made a
    folder of that name in the current directory. The patched one archives and creates the run's folder
    (``experiments/<name>`` or ``results/<name>``, through ``mkdir_and_rename``, which the launcher locks) and
    only the folders of :data:`RUN_FOLDER_KEYS` inside it."""
    import os

    import basicsr.test
    import basicsr.train
    import basicsr.utils
    import basicsr.utils.misc as misc

    if getattr(misc.make_exp_dirs, 'sfmnet_patched', False):
        return

    def make_exp_dirs(opt):
        path_opt = opt['path']
        root = path_opt['experiments_root' if opt['is_train'] else 'results_root']
        misc.mkdir_and_rename(root)  # looked up at call time: the launcher's locked version
        inside = osp.realpath(root) + os.sep
        for key in RUN_FOLDER_KEYS:
            folder = path_opt.get(key)
            if isinstance(folder, str) and osp.realpath(folder).startswith(inside):
                os.makedirs(folder, exist_ok=True)

    make_exp_dirs.sfmnet_patched = True
    for module in (misc, basicsr.utils, basicsr.train, basicsr.test):
        module.make_exp_dirs = make_exp_dirs
