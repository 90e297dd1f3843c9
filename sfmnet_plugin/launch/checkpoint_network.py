"""The network a run loads from ``path.pretrain_network_g``: the checkpoint's own ``network_g`` when the option file
gives none, and a short message (the one ``sfmnet-infer`` gives) when the option file's does not fit the weights,
instead of BasicSR's state-dict traceback from deep inside the model's construction."""
import copy
from os import path as osp

PARAM_KEY = 'params'


def pretrained_checkpoint(opt):
    """``(path, checkpoint)`` of ``path.pretrain_network_g`` when it is an existing file, else ``(None, None)``."""
    from sfmnet_plugin.checkpoints.io import load_checkpoint_file

    value = (opt.get('path') or {}).get('pretrain_network_g')
    if not isinstance(value, str) or not value or not osp.isfile(osp.expanduser(value)):
        return None, None
    path = osp.expanduser(value)
    return path, load_checkpoint_file(path, what='path.pretrain_network_g')


def with_checkpoint_network(opt):
    """``(options, True)`` with ``network_g`` taken from the pretrained checkpoint when the options have none and
    the checkpoint carries its own (the plugin saves it beside the weights), else ``(opt, False)``."""
    from sfmnet_plugin.checkpoints.io import stored_network_options

    if opt.get('network_g'):
        return opt, False
    _, checkpoint = pretrained_checkpoint(opt)
    stored = stored_network_options(checkpoint) if checkpoint is not None else None
    if stored is None:
        return opt, False
    return dict(opt, network_g=stored), True


def _state_dict(opt, checkpoint):
    """The weights BasicSR's ``load_network`` would load (``param_key_g``, falling back to ``params`` as it does)."""
    from sfmnet_plugin.checkpoints.conversion import strip_module_prefix

    key = (opt.get('path') or {}).get('param_key_g') or PARAM_KEY
    if isinstance(checkpoint, dict) and key not in checkpoint and PARAM_KEY in checkpoint:
        key = PARAM_KEY
    state_dict = checkpoint[key] if isinstance(checkpoint, dict) and key in checkpoint else checkpoint
    return strip_module_prefix(state_dict) if isinstance(state_dict, dict) else None


def network_fit_problems(opt):
    """One problem when the pretrained weights do not load strictly into ``network_g`` (built on the meta device:
    no memory, no time); none when nothing is pretrained, loading is not strict, or the file is an official
    checkpoint (converted when loaded)."""
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY

    from sfmnet_plugin.checkpoints import recognise_official_checkpoint
    from sfmnet_plugin.checkpoints.io import stored_network_options
    from sfmnet_plugin.checkpoints.mismatch import weights_mismatch

    network_g = opt.get('network_g')
    if not network_g or (opt.get('path') or {}).get('strict_load_g') is False:
        return []
    path, checkpoint = pretrained_checkpoint(opt)
    state_dict = _state_dict(opt, checkpoint) if checkpoint is not None else None
    if not state_dict or recognise_official_checkpoint(state_dict) is not None:
        return []
    options = copy.deepcopy(dict(network_g))
    try:
        # the registry, not basicsr's build_network: that logs, and the first log call would set up BasicSR's
        # logger before the run gives it its log file
        with torch.device('meta'):
            network = ARCH_REGISTRY.get(options.pop('type'))(**options)
    except Exception:  # a network_g that does not build: BasicSR reports it with its own message
        return []
    lines = weights_mismatch(network.state_dict(), state_dict)
    if not lines:
        return []
    stored = stored_network_options(checkpoint)
    fix = (f'remove network_g from the options to use the checkpoint\'s own ({stored}), or set matching options'
           if stored else 'set the matching network_g options')
    return [f'path.pretrain_network_g: checkpoint {path} does not fit network_g {dict(network_g)}:\n    '
            + '\n    '.join(lines) + f'\n    ({fix}).']
