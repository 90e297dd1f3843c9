"""Resume continues the run exactly: same samples in the same order, same random numbers.

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
"""
import logging
import random
import signal
import sys
import threading

import numpy as np

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
        self.resumed_old_state = False
        self.epoch, self.batches, self.epoch_rng = 0, 0, None
        self.model = None
        self.saved_iter = None
        self.stop_signal = None

    def resume_from(self, resume_state):
        """Remember what ``resume_state`` says about the stream, to apply when its epoch starts."""
        self.pending, self.pending_rng = resume_state.get('sample_stream'), resume_state.get('rng_states')
        self.resumed_old_state = self.pending is None

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


_current = None  # the TrainingStream of the train_pipeline running in this process


def current_stream():
    return _current


def resumable_prefetcher(base):
    """BasicSR's CPU/CUDA prefetcher class ``base`` that tracks and restores the run's sample stream."""

    class ResumablePrefetcher(base):
        def reset(self):
            stream = _current
            if stream is None:
                return super().reset()
            sampler_epoch = getattr(getattr(self.ori_loader, 'sampler', None), 'epoch', stream.epoch)
            pending = stream.begin_epoch(sampler_epoch, super().reset)
            if pending is not None:
                stream.finish_resume(pending, super().next)

        def next(self):
            stream = _current
            if stream is None:
                return super().next()
            stream.stop_if_asked()
            batch = super().next()
            if batch is not None:
                stream.batches += 1
            return batch

    ResumablePrefetcher.__name__ = ResumablePrefetcher.__qualname__ = f'Resumable{base.__name__}'
    return ResumablePrefetcher


def _install_stop_handlers(stream):
    """SIGINT/SIGTERM ask ``stream`` to stop at the next iteration; a second one acts as before. Returns the
    previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def ask_to_stop(signum, frame):
        if stream.stop_signal is not None or stream.model is None:  # a second signal, or nothing to save yet
            _restore_handlers(previous)
            signal.raise_signal(signum)
            return
        stream.stop_signal = signum
        print(f'\n{signal.Signals(signum).name}: stopping after this iteration with a checkpoint '
              '(send it again to stop at once).', file=sys.stderr, flush=True)

    for signum in STOP_SIGNALS:
        signal.signal(signum, ask_to_stop)
    return previous


def _restore_handlers(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def patch_exact_resume():
    """Install the behaviour of the module docstring in basicsr's training pipeline and BaseModel."""
    import basicsr.train as train
    from basicsr.models.base_model import BaseModel

    if getattr(train.train_pipeline, 'sfmnet_patched', False):
        return
    upstream_pipeline, upstream_load_resume_state = train.train_pipeline, train.load_resume_state
    upstream_build_model = train.build_model
    upstream_validation, upstream_resume_training = BaseModel.validation, BaseModel.resume_training

    def train_pipeline(root_path):
        global _current
        _current = TrainingStream()
        previous = _install_stop_handlers(_current)
        try:
            return upstream_pipeline(root_path)
        finally:
            _restore_handlers(previous)
            _current = None

    def load_resume_state(opt):
        resume_state = upstream_load_resume_state(opt)
        if _current is not None and resume_state is not None:
            _current.resume_from(resume_state)
        return resume_state

    def build_model(opt):
        model = upstream_build_model(opt)
        if _current is not None and opt.get('is_train'):
            _current.model = model
            if _current.resumed_old_state:
                logging.getLogger('basicsr').warning(
                    'resume: this training state has no sample position (saved by an older version): the epoch '
                    'restarts from its first batch and random numbers are not restored.')
        return model

    def validation(self, *args, **kwargs):
        saved = rng_states()
        try:
            return upstream_validation(self, *args, **kwargs)
        finally:
            set_rng_states(saved)

    def resume_training(self, resume_state):
        upstream_resume_training(self, resume_state)
        scaler = getattr(self, 'grad_scaler', None)
        if scaler is not None and resume_state.get('grad_scaler'):
            scaler.load_state_dict(resume_state['grad_scaler'])

    train_pipeline.sfmnet_patched = True
    train.train_pipeline = train_pipeline
    train.load_resume_state = load_resume_state
    train.load_resume_state.sfmnet_patched = True
    train.build_model = build_model
    train.CPUPrefetcher = resumable_prefetcher(train.CPUPrefetcher)
    train.CUDAPrefetcher = resumable_prefetcher(train.CUDAPrefetcher)
    BaseModel.validation = validation
    BaseModel.resume_training = resume_training


def resume_extras(model, current_iter):
    """The entries a training state saved at ``current_iter`` adds to upstream's (see the module docstring)."""
    extras = {'rng_states': rng_states()}
    stream = _current
    if stream is not None:
        extras['sample_stream'] = stream.state()
        stream.saved_iter = current_iter
    scaler = getattr(model, 'grad_scaler', None)
    if scaler is not None and scaler.is_enabled():
        extras['grad_scaler'] = scaler.state_dict()
    return extras
