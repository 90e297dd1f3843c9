"""Check an option file's keys before BasicSR builds anything: a misspelt key is an error, not a silent default.

BasicSR reads options with ``opt.get(key, default)``, so ``manual_sed``, a top-level ``trian:`` or
``grad_clip_nrom`` are ignored without a word. :func:`validate_options` walks the merged options
and raises :class:`OptionKeyError` naming each unknown key, its place (``train.grad_clip_nrom``)
and the closest valid key.

Where the valid keys come from:

* component sections - ``network_*``, the loss ``*_opt`` sections of ``train``, ``val.metrics``,
  ``train.optim_*`` and ``train.scheduler`` - from the constructor (or function) signature of
  the registered type (``inspect``), so a newly registered network is checked with no table to
  update. A constructor that takes ``**kwargs`` accepts any key (it may pass them on); metric
  functions of BasicSR and the plugin take ``**kwargs`` only to swallow ``better``, so their named
  arguments are the valid keys.
* model-level sections (top level, ``path``, ``train``, ``val``, ``logger``) - from
  :data:`BASE_KEYS` (what basicsr 1.4.2's parser, trainer, tester, logger and ``BaseModel`` read)
  plus, for every class along the model's MRO, the keys that class reads beyond its parents': the
  class's own ``option_keys`` attribute (``{section: keys}``, '' for the top level; every model of
  the plugin declares it) or, for BasicSR's classes, which cannot carry it, their
  :data:`BASICSR_MODEL_KEYS` entry. A model with a class that declares nothing (a third-party
  model) may read anything, so these sections are then not checked.
* datasets - the data-loader keys BasicSR reads (:data:`LOADER_KEYS`) plus the dataset class's
  ``option_keys`` attribute (every key it reads; the plugin's datasets declare it) or, for BasicSR's
  datasets, their :data:`BASICSR_DATASET_KEYS` entry; a dataset class with neither is not checked.

Your own model or dataset class is checked once it declares ``option_keys``; there is no table to edit.
"""
import difflib
import inspect

import torch

from sfmnet_plugin.config.option_values import option_value_problems

# What basicsr 1.4.2 reads for every model (utils/options.py, train.py, test.py, utils/logger.py,
# models/base_model.py, data/__init__.py); the launcher-set keys are accepted too (a parsed file may hold them).
BASE_KEYS = {
    '': {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'path', 'train', 'val',
         'logger', 'dist_params', 'find_unused_parameters',
         'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path'},
    'path': {'pretrain_network_g', 'param_key_g', 'strict_load_g', 'resume_state', 'ignore_resume_networks',
             'experiments_root', 'models', 'network_format',  # network_format: the plugin's (compat.saving)
             'training_states', 'log', 'visualization', 'results_root'},
    'train': {'optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'ema_decay', 'pixel_opt', 'perceptual_opt'},
    'val': {'val_freq', 'save_img', 'suffix', 'metrics', 'pbar'},
    'logger': {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'},
    'logger.wandb': {'project', 'resume_id'},
}

# BasicSR's model classes (which cannot carry an ``option_keys`` attribute): the keys each reads on top of its
# parent's (section -> keys; '' is the top level). The plugin's models declare theirs on the class.
BASICSR_MODEL_KEYS = {
    'BaseModel': {},
    'SRModel': {},
    'SRGANModel': {'': {'network_d'}, 'path': {'pretrain_network_d', 'param_key_d', 'strict_load_d'},
                   'train': {'optim_d', 'ldl_opt', 'gan_opt', 'net_d_iters', 'net_d_init_iters'}},
    'ESRGANModel': {},
}

# Every dataset section: what basicsr's build_dataset / build_dataloader / parse_options read.
LOADER_KEYS = {'name', 'type', 'phase', 'scale', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio',
               'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers', 'use_shuffle'}
# BasicSR's dataset classes: every key each reads besides the loader's. The plugin's declare theirs on the class.
BASICSR_DATASET_KEYS = {
    'PairedImageDataset': {'dataroot_gt', 'dataroot_lq', 'io_backend', 'meta_info_file', 'filename_tmpl', 'gt_size',
                           'use_hflip', 'use_rot', 'color', 'mean', 'std'},
    'SingleImageDataset': {'dataroot_lq', 'io_backend', 'meta_info_file', 'color', 'mean', 'std'},
}

# BasicSR's scheduler names -> the class setup_schedulers builds (base_model.py).
_SCHEDULERS = {'MultiStepLR': 'MultiStepRestartLR', 'MultiStepRestartLR': 'MultiStepRestartLR',
               'CosineAnnealingRestartLR': 'CosineAnnealingRestartLR'}
_OPTIMIZERS = ('Adam', 'AdamW', 'Adamax', 'SGD', 'ASGD', 'RMSprop', 'Rprop')  # BaseModel.get_optimizer
# Arguments a component receives from the code, not from its option section.
_NOT_OPTIONS = {'self', 'img', 'img2', 'params', 'optimizer'}


class OptionKeyError(ValueError):
    """Unknown option keys; the message names each one, its place and the closest valid key."""


def _is_basicsr_class(cls):
    return cls.__module__.split('.')[0] == 'basicsr'


def declared_model_keys(cls):
    """The keys model class ``cls`` itself reads beyond its parents' (``{section: keys}``), or None if undeclared."""
    if _is_basicsr_class(cls):
        return BASICSR_MODEL_KEYS.get(cls.__name__)
    return vars(cls).get('option_keys')  # its own declaration, not a parent's


def declared_dataset_keys(cls):
    """Every key dataset class ``cls`` reads besides the data loader's, or None if undeclared."""
    if _is_basicsr_class(cls):
        return BASICSR_DATASET_KEYS.get(cls.__name__)
    return getattr(cls, 'option_keys', None)


def _closest(key, valid):
    match = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.6)
    if match:
        return f'did you mean {match[0]!r}?'
    shown = sorted(valid)
    return 'valid keys: ' + (', '.join(shown) if len(shown) <= 12 else ', '.join(shown[:12]) + ', ...')


class _Checker:
    """Collects the problems of one options dict."""

    def __init__(self):
        self.problems = []

    def unknown(self, section, place, valid, what=''):
        if not isinstance(section, dict):
            return
        for key in section:
            if key not in valid:
                where = f'{place}.{key}' if place else str(key)
                self.problems.append(f'unknown option {where}{what} ({_closest(key, valid)})')

    def registered(self, registry, type_name, place, kind):
        """The object registered as ``type_name`` (option ``place``), or None with a problem naming the closest name."""
        if type_name is None:
            self.problems.append(f'{place} is missing (the registered {kind} to build)')
            return None
        try:
            return registry.get(type_name)  # also finds BasicSR's own classes, stored as '<name>_basicsr'
        except KeyError:
            pass
        names = [name.removesuffix('_basicsr') for name, _ in registry]
        match = difflib.get_close_matches(str(type_name), names, n=1, cutoff=0.6)
        hint = f'did you mean {match[0]!r}?' if match else 'is it registered (its module imported)?'
        self.problems.append(f'{place}: {type_name!r} is not a registered {kind} ({hint})')
        return None

    def signature(self, section, place, target, swallow_kwargs=False, extra=()):
        """Check ``section``'s keys against the arguments of ``target`` (a class or a function)."""
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if takes_kwargs and not swallow_kwargs:
            return
        valid = {name for name, p in parameters.items()
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in _NOT_OPTIONS}
        self.unknown(section, place, valid | {'type'} | set(extra),
                     f' for {getattr(target, "__name__", target)}')


def _model_keys(model_class):
    """Section -> valid keys for ``model_class``, or None when some class of its MRO is not described."""
    keys = {section: set(values) for section, values in BASE_KEYS.items()}
    for cls in model_class.__mro__:
        if cls.__name__ == 'BaseModel':
            return keys
        declared = declared_model_keys(cls)
        if declared is None:
            return None
        for section, values in declared.items():
            keys.setdefault(section, set()).update(values)
    return None


def _check_network(checker, section, place):
    from basicsr.utils.registry import ARCH_REGISTRY

    if isinstance(section, dict):
        arch = checker.registered(ARCH_REGISTRY, section.get('type'), f'{place}.type', 'architecture')
        if arch is not None:
            checker.signature(section, place, arch)


def _check_datasets(checker, datasets):
    from basicsr.utils.registry import DATASET_REGISTRY

    if not isinstance(datasets, dict):
        return
    for name, dataset in datasets.items():
        place = f'datasets.{name}'
        if not isinstance(dataset, dict):
            continue
        dataset_class = checker.registered(DATASET_REGISTRY, dataset.get('type'), f'{place}.type', 'dataset')
        if dataset_class is None:
            continue
        keys = declared_dataset_keys(dataset_class)
        if keys is not None:
            checker.unknown(dataset, place, LOADER_KEYS | set(keys), f' for {dataset_class.__name__}')


def _check_train(checker, train, valid_keys):
    from basicsr.models import lr_scheduler
    from basicsr.utils.registry import LOSS_REGISTRY

    if not isinstance(train, dict):
        return
    if valid_keys is not None:
        checker.unknown(train, 'train', valid_keys)
    for key, section in train.items():
        if not isinstance(section, dict) or 'type' not in section:
            continue
        place = f'train.{key}'
        if key.startswith('optim_'):
            if section['type'] in _OPTIMIZERS:
                checker.signature(section, place, getattr(torch.optim, section['type']))
            else:
                checker.problems.append(f'{place}.type: {section["type"]!r} is not an optimizer BasicSR builds '
                                        f'({", ".join(_OPTIMIZERS)})')
        elif key == 'scheduler':
            scheduler = _SCHEDULERS.get(section['type'])
            if scheduler is None:
                checker.problems.append(f'{place}.type: {section["type"]!r} is not a scheduler BasicSR builds '
                                        f'({", ".join(_SCHEDULERS)})')
            else:
                checker.signature(section, place, getattr(lr_scheduler, scheduler))
        elif key.endswith('_opt'):
            loss = checker.registered(LOSS_REGISTRY, section['type'], f'{place}.type', 'loss')
            if loss is not None:
                checker.signature(section, place, loss)


def _check_metrics(checker, metrics):
    from basicsr.utils.registry import METRIC_REGISTRY

    if not isinstance(metrics, dict):
        return
    for name, metric in metrics.items():
        place = f'val.metrics.{name}'
        if not isinstance(metric, dict):
            continue
        function = checker.registered(METRIC_REGISTRY, metric.get('type'), f'{place}.type', 'metric')
        if function is not None:
            ours = function.__module__.startswith(('basicsr.', 'sfmnet_plugin.'))
            checker.signature(metric, place, function, swallow_kwargs=ours, extra={'better'})


def option_key_problems(opt):
    """Every unknown key of the (merged) options ``opt``, as messages; an empty list when all are known."""
    from basicsr.utils.registry import MODEL_REGISTRY

    checker = _Checker()
    if not isinstance(opt, dict):
        return ['the options must be a mapping']
    model_class = checker.registered(MODEL_REGISTRY, opt.get('model_type'), 'model_type', 'model')
    model_keys = None if model_class is None else _model_keys(model_class)
    if model_keys is not None:
        checker.unknown(opt, '', model_keys[''])
        for section in ('path', 'val', 'logger'):
            checker.unknown(opt.get(section), section, model_keys[section])
        wandb = (opt.get('logger') or {}).get('wandb') if isinstance(opt.get('logger'), dict) else None
        checker.unknown(wandb, 'logger.wandb', model_keys['logger.wandb'])
    for key, section in opt.items():
        if isinstance(key, str) and key.startswith('network_'):
            _check_network(checker, section, key)
    _check_datasets(checker, opt.get('datasets'))
    _check_train(checker, opt.get('train'), None if model_keys is None else model_keys['train'])
    if isinstance(opt.get('val'), dict):
        _check_metrics(checker, opt['val'].get('metrics'))
    _check_network_format(checker, opt.get('path'))
    return checker.problems


def _check_network_format(checker, path):
    from sfmnet_plugin.checkpoints.io import NETWORK_FORMATS

    network_format = path.get('network_format') if isinstance(path, dict) else None
    if network_format is not None and network_format not in NETWORK_FORMATS:
        checker.problems.append(f'path.network_format: {network_format!r} is not a network file format '
                                f'(one of {", ".join(sorted(NETWORK_FORMATS))})')


def validate_options(opt, source='options'):
    """Raise :class:`OptionKeyError` (``source: problem; problem``) if ``opt`` has unknown keys or types, or values
    of a wrong type or range, or a name that is a path
    (:func:`~sfmnet_plugin.config.option_values.option_value_problems`)."""
    problems = option_key_problems(opt) + option_value_problems(opt)
    if problems:
        raise OptionKeyError(f'{source}: ' + '; '.join(problems) + '.')
