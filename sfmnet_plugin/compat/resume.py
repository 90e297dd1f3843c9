"""Resume continues the run exactly, from the experiment's own folder: same samples in the same order, same random
numbers.

basicsr 1.4.2 keeps only the epoch, the iteration, the optimizers and the schedulers in a training
state. A resumed run restarted the epoch's sample order from its first batch (so it trained again on
the batches seen before the stop and never on some others) and drew its random numbers from a fresh
seed: the weights drifted away from those of a run that never stopped. On top of upstream's state,
every ``<iter>.state`` now holds

* ``sample_stream``: the sampler's epoch (its shuffle seed), the number of batches drawn in that epoch
  and the random-number states at the start of the epoch (the DataLoader draws its workers' seed from
  them when the epoch's iterator is created);
* ``rng_states``: Python's, NumPy's and torch's (CPU and CUDA) random-number states at the save.

On resume the epoch's iterator is rebuilt from the epoch's own random state, the batches drawn
before the save are drawn again and dropped (a worker's random stream advances only by loading; no
network runs on them), then the states of the save are restored. Validation runs with saved and
restored random states, so it never changes the training's random stream and a run that validated
at iteration k continues as one resumed from k. With one process on the CPU and the default
prefetching, stopped-and-resumed equals never-stopped bit for bit; on a GPU (non-deterministic
kernels), with ``prefetch_mode: cpu`` (a background thread), ``persistent_workers`` or several
processes the sample order is still exact, the random streams may not be.

SIGINT and SIGTERM (Ctrl-C, a cluster's pre-emption, ``kill``) no longer lose the iterations since
the last checkpoint: the run finishes its current iteration, saves networks and a training state
(unless that iteration was just saved), says so and exits with status 128 + the signal number;
``--auto_resume`` continues from there. A second signal stops at once.

Upstream ``load_resume_state`` also scanned ``experiments/<name>`` relative to the *current directory* while the
experiment lives under ``root_path`` (from any other directory it found nothing, and ``make_exp_dirs`` then
archived the run that should have resumed), mapped the state onto CUDA unconditionally and took the newest
``.state`` even when it was truncated. :func:`load_resume_state` reads the experiment's own ``training_states/``
onto the run's device and skips states that do not load.

What uses this module: the launchers' run (:mod:`sfmnet_plugin.launch.session`) replaces
``basicsr.train.load_resume_state`` and the prefetchers with the ones here and installs :func:`stop_on_signals`;
the training state's extra entries and ``resume_training`` are methods of the plugin's models
(:mod:`sfmnet_plugin.compat.model_methods`).
"""
import logging
import os
import random
import signal
import sys
import threading
from contextlib import contextmanager
from os import path as osp

import numpy as np

from sfmnet_plugin.compat.run_state import current_run

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def rng_states():
    """Python's, NumPy's and torch's random-number states as plain data (loadable with ``weights_only``)."""
    import torch

    numpy_state = np.random.get_state(legacy=False)
    states = {
        'python': random.getstate(),
        'numpy': {'key': torch.from_numpy(numpy_state['state']['key'].astype(np.int64)),
                  'pos': int(numpy_state['state']['pos']), 'has_gauss': int(numpy_state['has_gauss']),
                  'gauss': float(numpy_state['gauss'])},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    """Restore what :func:`rng_states` returned (tensors may come back on any device)."""
    import torch

    version, internal, gauss_next = states['python']
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = states['numpy']
    key = numpy_state['key'].cpu().numpy().astype(np.uint32)
    np.random.set_state({'bit_generator': 'MT19937', 'state': {'key': key, 'pos': numpy_state['pos']},
                         'has_gauss': numpy_state['has_gauss'], 'gauss': numpy_state['gauss']})
    torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states['cuda']])


class TrainingStream:
    """One training run's position in its sample stream, the resume it still has to apply, and its stop request."""

    def __init__(self):
        self.pending = self.pending_rng = None
        self.epoch, self.batches, self.epoch_rng = 0, 0, None
        self.model = None
        self.saved_iter = None
        self.stop_signal = None

    def resume_from(self, resume_state):
        """Remember what ``resume_state`` says about the stream, to apply when its epoch starts."""
        self.pending, self.pending_rng = resume_state.get('sample_stream'), resume_state.get('rng_states')

    def state(self):
        """What a training state records about the stream."""
        return {'epoch': self.epoch, 'batches': self.batches, 'epoch_rng': self.epoch_rng}

    def begin_epoch(self, sampler_epoch, restart_iterator):
        """Start the epoch's iterator (``restart_iterator``) and, on resume, move it to where the state was saved."""
        pending, self.pending = self.pending, None
        if pending is not None and pending['epoch'] == sampler_epoch:
            set_rng_states(pending['epoch_rng'])
        self.epoch, self.batches, self.epoch_rng = sampler_epoch, 0, rng_states()
        restart_iterator()
        return pending if pending is not None and pending['epoch'] == sampler_epoch else None

    def finish_resume(self, pending, draw):
        """Draw (and drop) the batches the saved run had drawn in this epoch, then restore the save's random states."""
        for _ in range(pending['batches']):
            if draw() is None:
                logging.getLogger('basicsr').warning(
                    'resume: the training data has fewer batches per epoch than when the state was saved; '
                    'continuing with the next epoch.')
                break
            self.batches += 1
        if self.pending_rng is not None:
            set_rng_states(self.pending_rng)
        self.pending_rng = None

    def stop_if_asked(self):
        """Save (networks and state) and exit with 128 + signal if a stop signal came in."""
        if self.stop_signal is None:
            return
        model, signum = self.model, self.stop_signal
        current_iter = getattr(model, 'current_iter', None)
        logger = logging.getLogger('basicsr')
        if model is not None and current_iter and self.saved_iter != current_iter:
            logger.info(f'{signal.Signals(signum).name}: saving models and training state at iteration {current_iter}.')
            model.save(self.epoch, current_iter)
        if current_iter:
            logger.info(f'{signal.Signals(signum).name}: stopped after iteration {current_iter}; '
                        'continue with --auto_resume.')
        sys.exit(128 + signum)


def current_stream():
    """The :class:`TrainingStream` of the launcher run in progress, or None."""
    run = current_run()
    return None if run is None else run.stream


def resumable_prefetcher(base):
    """BasicSR's CPU/CUDA prefetcher class ``base`` that tracks and restores the run's sample stream."""

    class ResumablePrefetcher(base):
        def reset(self):
            stream = current_stream()
            if stream is None:
                return super().reset()
            sampler_epoch = getattr(getattr(self.ori_loader, 'sampler', None), 'epoch', stream.epoch)
            pending = stream.begin_epoch(sampler_epoch, super().reset)
            if pending is not None:
                stream.finish_resume(pending, super().next)

        def next(self):
            stream = current_stream()
            if stream is None:
                return super().next()
            stream.stop_if_asked()
            batch = super().next()
            if batch is not None:
                stream.batches += 1
            return batch

    ResumablePrefetcher.__name__ = ResumablePrefetcher.__qualname__ = f'Resumable{base.__name__}'
    return ResumablePrefetcher


@contextmanager
def stop_on_signals(stream):
    """Inside the ``with`` block, SIGINT/SIGTERM ask ``stream`` to stop at the next iteration (with a checkpoint);
    a second one, or one before there is a model to save, acts as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def restore_handlers():
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def ask_to_stop(signum, frame):
        if stream.stop_signal is not None or stream.model is None:
            restore_handlers()
            signal.raise_signal(signum)
            return
        stream.stop_signal = signum
        print(f'\n{signal.Signals(signum).name}: stopping after this iteration with a checkpoint '
              '(send it again to stop at once).', file=sys.stderr, flush=True)

    for signum in STOP_SIGNALS:
        signal.signal(signum, ask_to_stop)
    try:
        yield
    finally:
        restore_handlers()


def resume_extras(model, current_iter):
    """The entries a training state saved at ``current_iter`` adds to upstream's (see the module docstring)."""
    extras = {'rng_states': rng_states()}
    stream = current_stream()
    if stream is not None:
        extras['sample_stream'] = stream.state()
        stream.saved_iter = current_iter
    scaler = getattr(model, 'grad_scaler', None)
    if scaler is not None and scaler.is_enabled():
        extras['grad_scaler'] = scaler.state_dict()
    return extras


def training_states_newest_first(states_dir):
    """Paths of the ``<iter>.state`` files in ``states_dir``, the highest iteration first."""
    if not osp.isdir(states_dir):
        return []
    iters = [int(name[:-len('.state')]) for name in os.listdir(states_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    return [osp.join(states_dir, f'{i}.state') for i in sorted(iters, reverse=True)]


def resume_network_files(opt, models_dir, iteration):
    """``{pretrain_network_<x>: path}``: the network files a training state of ``iteration`` resumes from, as
    BasicSR's ``check_resume`` names them (``net_<x>_<iter>.pth`` in ``models_dir`` for every ``network_<x>`` of
    ``opt`` not in ``path.ignore_resume_networks``), each the file the run saved, ``.pth`` or ``.safetensors``."""
    from sfmnet_plugin.checkpoints.io import existing_network_file

    ignored = (opt.get('path') or {}).get('ignore_resume_networks') or ()
    return {f'pretrain_{key}': existing_network_file(
                osp.join(models_dir, f"net_{key[len('network_'):]}_{iteration}.pth"))
            for key in opt if key.startswith('network_') and key not in ignored}


def missing_network_file(opt, models_dir, iteration):
    """Why a training state of ``iteration`` cannot be resumed from ``models_dir`` (a network file it needs is
    missing or does not load), or None."""
    from sfmnet_plugin.checkpoints.io import load_checkpoint_file
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

    for path in resume_network_files(opt, models_dir, iteration).values():
        if not osp.isfile(path):
            return f'its network file {path} is missing (in either format, .pth or .safetensors)'
        try:
            load_checkpoint_file(path, what='network file')
        except (UnsafeOrInvalidFileError, OSError) as error:
            return f'its network file does not load ({error})'
    return None


def explicit_state_problem(opt, models_dir, state_path, iteration):
    """One line saying why ``path.resume_state`` (``state_path``, saved at ``iteration``) cannot be resumed from
    ``models_dir`` and how to fix it, or None."""
    problem = missing_network_file(opt, models_dir, iteration)
    if problem is None:
        return None
    return (f'path.resume_state: the training state {state_path} cannot be resumed: {problem}. Restore that file, '
            'point path.resume_state at an older state whose network files exist, or use --auto_resume (it resumes '
            'from the newest complete state).')


def say(line):
    """``line`` in the run's log (and on the terminal) once its logger exists; on stderr outside a launcher run.

    Resume happens before BasicSR creates its logger (``train_pipeline`` warns against using it earlier), so a
    launcher run keeps the line until :func:`sfmnet_plugin.launch.session.run_changes`'s logger logs it.
    """
    run = current_run()
    if run is None:
        print(f'warning: {line}', file=sys.stderr, flush=True)
    else:
        run.notices.append(line)


def load_newest_complete_state(states_dir, map_location, opt):
    """(path, state) of the newest complete ``<iter>.state``; (None, None) if there is none.

    Complete: the state loads (``weights_only``) and every network file it resumes with the run's options ``opt``
    (from ``path.models``) (:func:`resume_network_files`) exists and loads. A newer state that is empty, truncated, not
    plain data or without its networks (a disk that filled up, a copy that was cut short, a deleted
    ``net_g_<iter>.pth``) is passed over with one line naming it and why: resuming from the newest complete state
    loses some iterations, failing would lose the run.
    """
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

    for state_path in training_states_newest_first(states_dir):
        try:
            state = load_torch_file(state_path, map_location=map_location, what='training state')
        except UnsafeOrInvalidFileError as error:
            say(f'--auto_resume skips {error}')
            continue
        problem = missing_network_file(opt, opt['path'].get('models') or '', state.get('iter'))
        if problem is None:
            return state_path, state
        say(f'--auto_resume skips the training state {state_path}: {problem}; resuming from an older complete '
            'state.')
    return None, None


def find_resumed_networks(opt):
    """Point the ``pretrain_network_*`` paths that ``check_resume`` set (always ``net_<x>_<iter>.pth``) at the file
    the run saved, ``.pth`` or ``.safetensors``."""
    from sfmnet_plugin.checkpoints.io import existing_network_file

    for key, value in opt['path'].items():
        if key.startswith('pretrain_network_') and isinstance(value, str):
            opt['path'][key] = existing_network_file(value)


def load_resume_state(opt):
    """The training state to resume from (None for a fresh run), as BasicSR's ``load_resume_state`` returns it.

    ``--auto_resume`` takes the newest complete state of the experiment's own ``training_states/``; an explicit
    ``path.resume_state`` must exist and load. The state is mapped onto the run's device, and the current launcher
    run's stream (if any) continues from it.
    """
    import torch
    from basicsr.utils import check_resume

    from sfmnet_plugin.utils.safe_loading import load_torch_file

    on_gpu = torch.cuda.is_available() and opt['num_gpu'] != 0
    device = f'cuda:{torch.cuda.current_device()}' if on_gpu else 'cpu'
    if opt['auto_resume']:
        state_path, resume_state = load_newest_complete_state(opt['path']['training_states'], device, opt)
        if state_path is None:  # say so: a wrong root or name would otherwise restart silently at iteration 0
            print(f"--auto_resume: no complete training state in {opt['path']['training_states']}; starting from "
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
        problem = explicit_state_problem(opt, opt['path'].get('models') or '', state_path, resume_state.get('iter'))
        if problem:  # the launchers' pre-flight reports this before anything runs; other callers get it here
            raise FileNotFoundError(problem)
    check_resume(opt, resume_state['iter'])
    find_resumed_networks(opt)
    stream = current_stream()
    if stream is not None:
        stream.resume_from(resume_state)
    return resume_state
