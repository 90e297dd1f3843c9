"""Run-time fixes that make basicsr 1.4.2 work on the current torch / torchvision / lmdb stack.

basicsr 1.4.2 (the newest release on PyPI, August 2022) breaks in several places on torch >= 2,
torchvision >= 0.17 and lmdb >= 2. Nothing here edits site-packages: every fix rebinds a name at
run time, is idempotent, and leaves the GPU behaviour untouched. ``apply_all()`` runs when
``sfmnet_plugin`` is imported.

Each function fixes one problem and is named for it:

* :func:`alias_torchvision_functional_tensor` - ``import basicsr`` crashes on torchvision >= 0.17.
  It must run before basicsr is imported; ``sfmnet_plugin_compat.pth`` (installed by setup.py)
  runs it at interpreter start so that ``import basicsr`` works even before ``import sfmnet_plugin``.
* :func:`patch_init_dist_for_cpu` - ``--launcher pytorch`` on a machine without CUDA.
* :func:`patch_ddp_wrapping_for_cpu` - DistributedDataParallel with ``device_ids`` on CPU.
* :func:`patch_resume_state_loading` - ``--auto_resume`` that looked in the wrong folder and
  loaded states onto CUDA only.
* :func:`patch_atomic_checkpoints` - a run killed while saving left a truncated state that resume chose.
* :func:`patch_lmdb_shared_environments` - lmdb >= 2 refuses to open one database twice
  (:func:`open_shared_lmdb` is also what the plugin's own readers use).
* :func:`normalize_local_rank_argument` - torch >= 2 launchers pass ``--local-rank``.
* :func:`patch_safe_torch_load` - BasicSR's ``torch.load`` calls (networks, pretrained arch weights) could
  unpickle code: they load with ``weights_only=True`` (:func:`sfmnet_plugin.safe_loading.load_torch_file`).
* :func:`patch_nonfinite_guards` - a NaN loss trained on, NaN weights were saved and NaN outputs scored
  (checks in :mod:`sfmnet_plugin.nonfinite`).
* :func:`patch_safe_yaml` - BasicSR's option parser used PyYAML's full loader, which constructs Python
  objects from tags: it gets a safe loader.
"""
import importlib
import os
import sys
import types
from collections import OrderedDict
from os import path as osp

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def alias_torchvision_functional_tensor():
    """Expose ``torchvision.transforms._functional_tensor`` under its pre-0.17 name.

    ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from the old module, and
    ``basicsr/__init__`` imports every dataset module, so without the alias any ``import basicsr``
    fails with ``ModuleNotFoundError``. The function keeps its signature in the renamed module.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        importlib.import_module(_FUNCTIONAL_TENSOR)
    except ImportError:
        sys.modules[_FUNCTIONAL_TENSOR] = importlib.import_module('torchvision.transforms._functional_tensor')


def patch_init_dist_for_cpu():
    """Make ``--launcher pytorch`` work without CUDA (gloo), keeping upstream's nccl path on GPUs.

    Upstream ``init_dist`` calls ``torch.cuda.set_device(rank % device_count())`` (a
    ZeroDivisionError on CPU) and forces the ``spawn`` start method, which makes CPU DataLoader
    workers re-import everything (7x slower here); on CPU we keep the platform default.
    """
    import basicsr.utils.dist_util as dist_util
    import basicsr.utils.options as options
    import torch
    import torch.distributed as dist

    if getattr(dist_util.init_dist, 'sfmnet_patched', False):
        return
    upstream_init_dist = dist_util.init_dist

    def init_dist(launcher, backend=None, **kwargs):
        if torch.cuda.is_available():
            return upstream_init_dist(launcher, backend or 'nccl', **kwargs)
        if launcher != 'pytorch':
            raise ValueError(f'Launcher {launcher!r} needs CUDA; on CPU use torchrun with --launcher pytorch.')
        if backend in (None, 'nccl'):
            backend = 'gloo'
        kwargs.pop('port', None)
        # torchrun provides RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (env:// rendezvous).
        dist.init_process_group(backend=backend, **kwargs)

    init_dist.sfmnet_patched = True
    dist_util.init_dist = init_dist
    options.init_dist = init_dist  # parse_options calls the name bound in its own module


def patch_ddp_wrapping_for_cpu():
    """Wrap networks in DDP without ``device_ids`` when the model lives on the CPU.

    Upstream ``BaseModel.model_to_device`` passes ``device_ids=[torch.cuda.current_device()]``,
    which raises on a machine without CUDA. The option ``find_unused_parameters`` is honoured
    as upstream does.
    """
    import torch
    from basicsr.models.base_model import BaseModel
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    if getattr(BaseModel.model_to_device, 'sfmnet_patched', False):
        return

    def model_to_device(self, net):
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    model_to_device.sfmnet_patched = True
    BaseModel.model_to_device = model_to_device


def training_states_newest_first(states_dir):
    """Paths of the ``<iter>.state`` files in ``states_dir``, the highest iteration first."""
    if not osp.isdir(states_dir):
        return []
    iters = [int(name[:-len('.state')]) for name in os.listdir(states_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    return [osp.join(states_dir, f'{i}.state') for i in sorted(iters, reverse=True)]


def latest_training_state(states_dir):
    """Path of the ``<iter>.state`` file with the highest iteration in ``states_dir``, or None."""
    states = training_states_newest_first(states_dir)
    return states[0] if states else None


def load_newest_complete_state(states_dir, map_location):
    """(path, state) of the newest ``<iter>.state`` that loads (``weights_only``); (None, None) if there is none.

    A newer state that is empty, truncated or not plain data is skipped with a warning that names it
    (a disk that filled up, a copy that was cut short): resuming from the newest complete state
    loses some iterations, failing would lose the run.
    """
    from sfmnet_plugin.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    for state_path in training_states_newest_first(states_dir):
        try:
            return state_path, load_torch_file(state_path, map_location=map_location, what='training state')
        except UnsafeOrInvalidFileError as error:
            print(f'warning: --auto_resume skips {error}', file=sys.stderr, flush=True)
    return None, None


def patch_resume_state_loading():
    """Resume from the experiment's own folder, onto whatever device the run uses.

    Upstream ``load_resume_state`` scans ``experiments/<name>`` relative to the *current
    directory* while the experiment lives under ``root_path``; from any other directory it found
    nothing and ``make_exp_dirs`` then archived the run that should have resumed. It also mapped
    the state onto CUDA unconditionally.
    """
    import basicsr.train as train
    import torch
    from basicsr.utils import check_resume

    if getattr(train.load_resume_state, 'sfmnet_patched', False):
        return

    def load_resume_state(opt):
        from sfmnet_plugin.safe_loading import load_torch_file

        on_gpu = torch.cuda.is_available() and opt['num_gpu'] != 0
        device = f'cuda:{torch.cuda.current_device()}' if on_gpu else 'cpu'
        if opt['auto_resume']:
            state_path, resume_state = load_newest_complete_state(opt['path']['training_states'], device)
            if state_path is None:
                return None
            opt['path']['resume_state'] = state_path
        else:
            state_path = opt['path'].get('resume_state')
            if not state_path:
                return None
            if not osp.isfile(state_path):
                raise FileNotFoundError(f'path.resume_state: no training state at {state_path!r}.')
            resume_state = load_torch_file(state_path, map_location=device, what='path.resume_state')
        check_resume(opt, resume_state['iter'])
        return resume_state

    load_resume_state.sfmnet_patched = True
    train.load_resume_state = load_resume_state


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary name beside ``path``, then rename: a kill never leaves a truncated file."""
    import torch

    partial = f'{path}.partial'
    try:
        torch.save(obj, partial)
        os.replace(partial, path)
    except BaseException:  # a full disk or a folder at ``path``: leave nothing half-written behind
        if osp.isfile(partial):
            os.remove(partial)
        raise


def patch_atomic_checkpoints():
    """Write networks and training states atomically.

    Upstream ``torch.save``s straight to the final name: a run killed while saving leaves a truncated
    ``<iter>.state`` (or ``net_g_<iter>.pth``) that ``--auto_resume`` then picks and fails on with
    ``EOFError: Ran out of input``. Networks are still written before the state, so a state on disk
    always has its networks.
    """
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.dist_util import master_only

    if getattr(BaseModel.save_training_state, 'sfmnet_patched', False):
        return

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        param_keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(param_keys):
            raise ValueError(f'{len(nets)} networks for {len(param_keys)} parameter keys.')
        checkpoint = {}
        for network, key in zip(nets, param_keys):
            state = self.get_bare_model(network).state_dict()
            checkpoint[key] = {name.removeprefix('module.'): tensor.cpu() for name, tensor in state.items()}
        label = 'latest' if current_iter == -1 else current_iter
        atomic_torch_save(checkpoint, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:  # upstream keeps no state for the final 'latest' save
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        atomic_torch_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    save_training_state.sfmnet_patched = True
    BaseModel.save_network = save_network
    BaseModel.save_training_state = save_training_state


_LMDB_ENVIRONMENTS = {}


def open_shared_lmdb(path, readonly=True, lock=False, readahead=False, **kwargs):
    """Open ``path`` once per process and return the same environment on every later call.

    lmdb >= 2.0 raises ``lmdb.Error: ... already open in this process`` on a second open of one
    database, also in a forked DataLoader worker whose parent opened it. Read-only environments
    opened with ``lock=False`` are safe to share, and a forked worker reuses the inherited one.
    """
    import lmdb

    key = osp.realpath(path)
    if key not in _LMDB_ENVIRONMENTS:
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise FileNotFoundError(f'LMDB database not found: {path!r} has no data.mdb.')
        _LMDB_ENVIRONMENTS[key] = lmdb.open(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
    return _LMDB_ENVIRONMENTS[key]


def patch_lmdb_shared_environments():
    """Make BasicSR's lmdb backend use :func:`open_shared_lmdb`.

    BasicSR opens one environment per dataset instance, so train and val on one LMDB, two val
    sets, or workers forked after validation opened it all fail on lmdb >= 2.
    """
    from basicsr.utils import file_client

    if getattr(file_client.LmdbBackend, 'sfmnet_patched', False):
        return

    class SharedLmdbBackend(file_client.LmdbBackend):
        sfmnet_patched = True

        def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
            db_paths = [str(p) for p in db_paths] if isinstance(db_paths, (list, tuple)) else [str(db_paths)]
            client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
            if len(client_keys) != len(db_paths):
                raise ValueError(f'{len(client_keys)} client keys for {len(db_paths)} lmdb paths.')
            self.db_paths = db_paths
            self._client = {
                client: open_shared_lmdb(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
                for client, path in zip(client_keys, db_paths)
            }

    file_client.LmdbBackend = SharedLmdbBackend
    file_client.FileClient._backends['lmdb'] = SharedLmdbBackend


def normalize_local_rank_argument(argv):
    """Rewrite torch >= 2's ``--local-rank`` into the ``--local_rank`` that BasicSR parses."""
    return [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]


class _WeightsOnlyTorch(types.ModuleType):
    """``torch`` as seen from a BasicSR module: the same, except that ``load`` never unpickles code."""

    def __init__(self):
        super().__init__('torch')

    def __getattr__(self, name):
        import torch

        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **_ignored):  # weights_only and pickle options are not the caller's to choose
        from sfmnet_plugin.safe_loading import load_torch_file

        return load_torch_file(f, map_location=map_location)


# Every basicsr 1.4.2 module that calls torch.load (tests/test_safety.py checks the list against the source).
BASICSR_TORCH_LOAD_MODULES = (
    'basicsr.models.base_model', 'basicsr.train', 'basicsr.archs.vgg_arch', 'basicsr.archs.spynet_arch',
    'basicsr.archs.basicvsr_arch', 'basicsr.archs.tof_arch', 'basicsr.archs.dfdnet_arch', 'basicsr.archs.inception',
)


def patch_safe_torch_load():
    """Make every ``torch.load`` in BasicSR load with ``weights_only=True`` and fail with the file's name.

    BasicSR's ``load_network`` (``path.pretrain_network_*``, resumed networks) and its architectures'
    pretrained-weight loaders call ``torch.load`` without ``weights_only``; on torch < 2.6, or with
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` set, a crafted ``.pth`` would run code. Their module-level
    name ``torch`` is rebound to a proxy whose ``load`` is :func:`sfmnet_plugin.safe_loading.load_torch_file`.
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

    from sfmnet_plugin.safe_loading import SafeOrderedLoader, load_yaml_file, load_yaml_text

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

    from sfmnet_plugin.nonfinite import check_finite_losses, check_finite_network, check_finite_output

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


def apply_all():
    """Apply every fix; safe to call more than once."""
    alias_torchvision_functional_tensor()
    patch_init_dist_for_cpu()
    patch_ddp_wrapping_for_cpu()
    patch_resume_state_loading()
    patch_atomic_checkpoints()
    patch_lmdb_shared_environments()
    patch_safe_torch_load()
    patch_safe_yaml()
    patch_nonfinite_guards()  # after patch_atomic_checkpoints: it wraps that save_network
