"""basicsr 1.4.2's checkpoints and resume: the right folder, any device, never a truncated file, either format.

Networks are saved as ``.pth`` (BasicSR's default) or, with ``path.network_format: safetensors``, as
``.safetensors`` (:mod:`sfmnet_plugin.checkpoints.io`), each with the options that build it (``network_g`` ...).
"""
import os
import sys
from os import path as osp

from sfmnet_plugin.compat.resume import resume_extras
from sfmnet_plugin.utils.atomic import atomic_torch_save
from sfmnet_plugin.utils.output_paths import output_write_error


def save_reporting_errors(path, save):
    """Call ``save()`` (an atomic write of ``path``), with a read-only folder, a full disk or a missing permission
    as one :class:`~sfmnet_plugin.utils.output_paths.OutputWriteError` line naming ``path`` and the cause."""
    try:
        save()
    except (OSError, RuntimeError) as error:
        raise output_write_error(path, error) from error


def training_states_newest_first(states_dir):
    """Paths of the ``<iter>.state`` files in ``states_dir``, the highest iteration first."""
    if not osp.isdir(states_dir):
        return []
    iters = [int(name[:-len('.state')]) for name in os.listdir(states_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    return [osp.join(states_dir, f'{i}.state') for i in sorted(iters, reverse=True)]


def load_newest_complete_state(states_dir, map_location):
    """(path, state) of the newest ``<iter>.state`` that loads (``weights_only``); (None, None) if there is none.

    A newer state that is empty, truncated or not plain data is skipped with a warning that names it
    (a disk that filled up, a copy that was cut short): resuming from the newest complete state
    loses some iterations, failing would lose the run.
    """
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    for state_path in training_states_newest_first(states_dir):
        try:
            return state_path, load_torch_file(state_path, map_location=map_location, what='training state')
        except UnsafeOrInvalidFileError as error:
            print(f'warning: --auto_resume skips {error}', file=sys.stderr, flush=True)
    return None, None


def find_resumed_networks(opt):
    """Point the ``pretrain_network_*`` paths that ``check_resume`` set (always ``net_<x>_<iter>.pth``) at the file
    the run saved, ``.pth`` or ``.safetensors``."""
    from sfmnet_plugin.checkpoints.io import existing_network_file

    for key, value in opt['path'].items():
        if key.startswith('pretrain_network_') and isinstance(value, str):
            opt['path'][key] = existing_network_file(value)


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
        from sfmnet_plugin.utils.safe_loading import load_torch_file

        on_gpu = torch.cuda.is_available() and opt['num_gpu'] != 0
        device = f'cuda:{torch.cuda.current_device()}' if on_gpu else 'cpu'
        if opt['auto_resume']:
            state_path, resume_state = load_newest_complete_state(opt['path']['training_states'], device)
            if state_path is None:  # say so: a wrong root or name would otherwise restart silently at iteration 0
                print(f"--auto_resume: no training state in {opt['path']['training_states']}; starting from "
                      'iteration 0 (check the experiment name and $SFMNET_ROOT_PATH if a run should be resumed).',
                      file=sys.stderr, flush=True)
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
        find_resumed_networks(opt)
        return resume_state

    load_resume_state.sfmnet_patched = True
    train.load_resume_state = load_resume_state


def patch_atomic_checkpoints():
    """Write networks and training states atomically; networks in ``path.network_format``, with their options.

    Upstream ``torch.save``s straight to the final name: a run killed while saving leaves a truncated
    ``<iter>.state`` (or ``net_g_<iter>.pth``) that ``--auto_resume`` then picks and fails on with
    ``EOFError: Ran out of input``. Networks are still written before the state, so a state on disk
    always has its networks. Each network file carries the options that build it (``network_g`` for
    ``net_g``), so ``sfmnet-infer`` needs no option file for it.
    """
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.dist_util import master_only

    from sfmnet_plugin.checkpoints.io import network_path, save_checkpoint_file

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
        network_format = self.opt['path'].get('network_format') or 'pth'
        options_key = f"network_{net_label.removeprefix('net_')}"  # net_g -> network_g
        path = network_path(self.opt['path']['models'], f'{net_label}_{label}', network_format)
        options = {options_key: self.opt.get(options_key)}
        save_reporting_errors(path, lambda: save_checkpoint_file(checkpoint, path, options, network_format))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:  # upstream keeps no state for the final 'latest' save
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers], **resume_extras(self, current_iter)}
        state_path = osp.join(self.opt['path']['training_states'], f'{current_iter}.state')
        save_reporting_errors(state_path, lambda: atomic_torch_save(state, state_path))

    save_training_state.sfmnet_patched = True
    BaseModel.save_network = save_network
    BaseModel.save_training_state = save_training_state
