"""How the plugin's models write networks and training states: never a truncated file, either format, with options.

BasicSR ``torch.save``s straight to the final name: a run killed while saving leaves a truncated ``<iter>.state``
(or ``net_g_<iter>.pth``) that ``--auto_resume`` then picks and fails on with ``EOFError: Ran out of input``. Here
every file is written atomically; networks are saved as ``.pth`` (BasicSR's default) or, with
``path.network_format: safetensors``, as ``.safetensors`` (:mod:`sfmnet_plugin.checkpoints.io`), each with the
options that build it (``network_g`` for ``net_g``), so ``sfmnet-infer`` needs no option file for it. A folder
that cannot be written is one :class:`~sfmnet_plugin.utils.output_paths.OutputWriteError` line.

:class:`~sfmnet_plugin.compat.model_methods.PluginModelMethods` calls these from ``save_network`` and
``save_training_state``; file names and keys stay BasicSR's (``net_g_<iter>.pth``, ``params``/``params_ema``,
``<iter>.state`` with ``epoch``, ``iter``, ``optimizers``, ``schedulers``), so BasicSR's resume finds them.
"""
from os import path as osp

from basicsr.utils.dist_util import master_only

from sfmnet_plugin.utils.atomic import atomic_torch_save
from sfmnet_plugin.utils.output_paths import output_write_error


def save_reporting_errors(path, save):
    """Call ``save()`` (an atomic write of ``path``), with a read-only folder, a full disk or a missing permission
    as one :class:`~sfmnet_plugin.utils.output_paths.OutputWriteError` line naming ``path`` and the cause."""
    try:
        save()
    except (OSError, RuntimeError) as error:
        raise output_write_error(path, error) from error


@master_only
def write_network_file(model, net, net_label, current_iter, param_key='params'):
    """Write ``net`` (a network or a list of them, one per ``param_key``) as BasicSR's ``save_network`` names it,
    in ``path.network_format``, with the options that build it (on rank 0 only)."""
    from sfmnet_plugin.checkpoints.io import network_path, save_checkpoint_file

    nets = net if isinstance(net, list) else [net]
    param_keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(param_keys):
        raise ValueError(f'{len(nets)} networks for {len(param_keys)} parameter keys.')
    checkpoint = {}
    for network, key in zip(nets, param_keys):
        state = model.get_bare_model(network).state_dict()
        checkpoint[key] = {name.removeprefix('module.'): tensor.cpu() for name, tensor in state.items()}
    label = 'latest' if current_iter == -1 else current_iter
    network_format = model.opt['path'].get('network_format') or 'pth'
    options_key = f"network_{net_label.removeprefix('net_')}"  # net_g -> network_g
    path = network_path(model.opt['path']['models'], f'{net_label}_{label}', network_format)
    options = {options_key: model.opt.get(options_key)}
    save_reporting_errors(path, lambda: save_checkpoint_file(checkpoint, path, options, network_format))


@master_only
def write_training_state(model, epoch, current_iter, extras):
    """Write ``<iter>.state``: BasicSR's entries and ``extras`` (on rank 0 only). The final ``latest`` save (-1)
    keeps no state, as in BasicSR."""
    if current_iter == -1:
        return
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in model.optimizers],
             'schedulers': [s.state_dict() for s in model.schedulers], **extras}
    state_path = osp.join(model.opt['path']['training_states'], f'{current_iter}.state')
    save_reporting_errors(state_path, lambda: atomic_torch_save(state, state_path))
