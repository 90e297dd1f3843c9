"""What a run shows on the terminal, and what a run that never started leaves behind.

:func:`run_session` wraps one BasicSR train or test pipeline run by the plugin's launchers (it receives the
launcher's :class:`~sfmnet_plugin.launch.request.RunRequest`):

* the terminal gets a one-screen start banner (network and parameters, data sizes, iterations, device
  and threads, where the log goes) instead of BasicSR's ~1,150 lines of ASCII art, options and network
  structure; those still go to the log file, in full;
* the ETA counts the iterations this run timed and never goes negative (BasicSR printed
  ``eta: -1 day, 23:59:56`` at the end and under-estimated throughout);
* when the last iteration already validated, the validation BasicSR runs again after the loop (same
  weights, same numbers, logged as iteration ``total_iter + 1``) is skipped;
* if the run fails before its first training iteration (testing: before it tests), e.g. on a broken
  dataset file or a network that cannot be built, the experiment and TensorBoard folders this run
  created are removed and a folder BasicSR archived to make room (``<name>_archived_<time>``) gets its
  name back;
* the run holds a lock on its experiment (testing: results) folder, taken before BasicSR archives or uses
  it (:mod:`sfmnet_plugin.utils.run_lock`): a second run of the same name stops with the first one's PID
  instead of archiving a live run's folder.

Every change is undone when the ``with`` block ends.
"""
import logging
import math
import os
import shutil
import time
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from os import path as osp

from sfmnet_plugin.utils.process_settings import busy_machine_warning
from sfmnet_plugin.utils.profiling import count_parameters
from sfmnet_plugin.utils.run_lock import RunFolderLocks

LOGGER_NAME = 'basicsr'
# INFO records of these BasicSR call sites (module, function) go to the log file only: the options,
# the network structure, the builders' "... is created" lines and the training statistics that the
# banner sums up.
LOG_FILE_ONLY_CALL_SITES = {
    ('base_model', 'print_network'),
    ('train', 'create_train_val_dataloader'),
    ('__init__', 'build_dataset'),
    ('__init__', 'build_network'),
    ('__init__', 'build_model'),
    ('__init__', 'build_loss'),
    ('sr_model', 'setup_optimizers'),
    ('base_model', 'get_optimizer'),
}


class LogFileOnly(str):
    """A log message for the log file only (the env info banner and the options dump)."""


class TerminalFilter(logging.Filter):
    """Keeps :class:`LogFileOnly` messages and the INFO records of :data:`LOG_FILE_ONLY_CALL_SITES` off the terminal."""

    def filter(self, record):
        if record.levelno > logging.INFO:
            return True
        if isinstance(record.msg, LogFileOnly):
            return False
        return (record.module, record.funcName) not in LOG_FILE_ONLY_CALL_SITES


def _logging_the_backend_in_use(dict2str):
    """``dict2str`` that logs ``dist_params.backend`` as the process group runs it: on CPU the plugin's
    ``init_dist`` starts gloo whatever the option file says (BasicSR's ``nccl`` default is for GPUs)."""
    def logged(opt, *args):
        import torch.distributed as dist

        if isinstance(opt, dict) and dist.is_available() and dist.is_initialized():
            opt = dict(opt, dist_params=dict(opt.get('dist_params') or {}, backend=dist.get_backend()))
        return dict2str(opt, *args)
    return logged


def terminal_handlers(logger):
    return [handler for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)]


def log_file_of(logger):
    files = [h.baseFilename for h in logger.handlers if isinstance(h, logging.FileHandler)]
    return files[0] if files else None


def _shown_path(path):
    """``path`` relative to the current folder when it lies inside it, else absolute."""
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def start_banner(opt, model, datasets):
    """The lines printed when a run starts: what runs, on what data, for how long, where its outputs go."""
    import torch

    stage = 'training' if opt['is_train'] else 'testing'
    device = str(getattr(model, 'device', 'cpu'))
    threads = torch.get_num_threads()
    threads = f', {threads} CPU thread{"s" if threads != 1 else ""}' if device == 'cpu' else ''
    lines = [f'{opt["network_g"]["type"]} {stage}: {opt["name"]} ({type(model).__name__}) on {device}{threads}']
    for label in sorted(name for name in vars(model) if name.startswith('net_') and hasattr(getattr(model, name),
                                                                                               'parameters')):
        net = model.get_bare_model(getattr(model, label))
        lines.append(f'  {label:<9} {type(net).__name__}, {count_parameters(net):,} parameters')
    world_size = opt.get('world_size', 1)
    for phase, dataset in datasets:
        dataset_opt = dataset.opt
        text = f'  {phase:<9} {dataset_opt.get("name", phase)}: {len(dataset):,} images'
        if phase == 'train':
            batch = dataset_opt['batch_size_per_gpu']
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            per_epoch = math.ceil(len(dataset) * ratio / world_size) // batch
            text += f', batch {batch}{f" x {world_size} processes" if world_size > 1 else ""} ' \
                    f'-> {per_epoch:,} iterations per epoch'
        lines.append(text)
    if opt['is_train']:
        train_opt, logger_opt = opt['train'], opt['logger']
        total = int(train_opt['total_iter'])
        val_freq = (opt.get('val') or {}).get('val_freq')
        schedule = f'  schedule  {total:,} iterations; checkpoints every {int(logger_opt["save_checkpoint_freq"]):,}'
        if val_freq and any(phase.startswith('val') for phase, _ in datasets):
            schedule += f', validation every {int(val_freq):,}'
        lines.append(schedule + f', progress every {logger_opt["print_freq"]}')
        outputs = opt['path']['experiments_root']
    else:
        outputs = opt['path']['results_root']
    log_file = log_file_of(logging.getLogger(LOGGER_NAME))
    lines.append(f'  outputs   {_shown_path(outputs)}/'
                 + (f' (options and network in {osp.basename(log_file)})' if log_file else ''))
    return lines


def eta_message_logger_class(base):
    """BasicSR's ``MessageLogger`` with an ETA from the iterations this run timed, never negative."""
    from basicsr.utils.dist_util import master_only

    class MessageLoggerWithEta(base):
        def reset_start_time(self):
            # BasicSR calls this after iteration 1 of a fresh run: the timed iterations start there.
            super().reset_start_time()
            self.start_iter = 1

        @master_only
        def __call__(self, log_vars):
            log_vars = dict(log_vars)
            epoch, current_iter, lrs = log_vars.pop('epoch'), log_vars.pop('iter'), log_vars.pop('lrs')
            message = (f'[{self.exp_name[:5]}..][epoch:{epoch:3d}, iter:{current_iter:8,d}, lr:('
                       + ''.join(f'{v:.3e},' for v in lrs) + ')] ')
            if 'time' in log_vars:
                iter_time, data_time = log_vars.pop('time'), log_vars.pop('data_time')
                timed = current_iter - self.start_iter
                per_iter = (time.time() - self.start_time) / timed if timed > 0 else iter_time
                eta_sec = per_iter * max(0, self.max_iters - current_iter)
                message += f'[eta: {timedelta(seconds=int(eta_sec))}, time (data): {iter_time:.3f} ({data_time:.3f})] '
            for key, value in log_vars.items():
                message += f'{key}: {value:.4e} '
                if self.use_tb_logger and 'debug' not in self.exp_name:
                    self.tb_logger.add_scalar(f'losses/{key}' if key.startswith('l_') else key, value, current_iter)
            self.logger.info(message)

    return MessageLoggerWithEta


class RunProgress:
    """Whether the run has started its real work, and (training) the optimisation steps done.

    A validation of unchanged weights (no step since the last one on that dataset) is skipped, and a
    training validation is never logged past ``total_iter``.
    """

    def __init__(self, total_iter=None):
        self.total_iter = total_iter
        self.steps = 0
        self.started = False
        self.validated_at_step = {}

    def wrap(self, model):
        optimize, validation = model.optimize_parameters, model.validation

        def optimize_parameters(current_iter):
            self.started = True
            self.steps += 1
            return optimize(current_iter)

        def validate(dataloader, current_iter, tb_logger, save_img=False):
            if self.total_iter is None:  # testing
                self.started = True
                return validation(dataloader, current_iter, tb_logger, save_img)
            name = dataloader.dataset.opt.get('name')
            current_iter = min(current_iter, self.total_iter)
            if self.steps and self.validated_at_step.get(name) == self.steps:
                logging.getLogger(LOGGER_NAME).info(
                    f'{name}: the final weights were validated at iteration {current_iter} already.')
                return None
            self.validated_at_step[name] = self.steps
            return validation(dataloader, current_iter, tb_logger, save_img)

        model.optimize_parameters, model.validation = optimize_parameters, validate
        return model


class CreatedFolders:
    """Folders BasicSR's ``mkdir_and_rename`` made during this run, and the ones it archived to make room."""

    def __init__(self):
        self.created, self.parents, self.archived = [], [], []

    def wrap(self, mkdir_and_rename):
        def recording_mkdir_and_rename(path):
            parent = osp.dirname(path)
            if not osp.isdir(parent):  # e.g. tb_logger/ itself: removed too, if the run leaves it empty
                self.parents.append(parent)
            before = set(os.listdir(parent)) if osp.isdir(parent) else set()
            mkdir_and_rename(path)
            self.archived += [(osp.join(parent, name), path) for name in sorted(set(os.listdir(parent)) - before)
                              if name.startswith(osp.basename(path) + '_archived_')]
            self.created.append(path)

        return recording_mkdir_and_rename

    def undo(self):
        """Remove what this run created and give archived folders their names back."""
        logger = logging.getLogger(LOGGER_NAME)
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            handler.close()  # the log file lies inside the experiment folder
            logger.removeHandler(handler)
        for path in reversed(self.created):
            shutil.rmtree(path, ignore_errors=True)
        for archived, original in self.archived:
            if osp.isdir(archived) and not osp.exists(original):
                os.rename(archived, original)
        for parent in reversed(self.parents):
            if osp.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)


def _patch(stack, owner, name, value):
    """Set ``owner.name = value`` until ``stack`` closes."""
    stack.callback(setattr, owner, name, getattr(owner, name))
    setattr(owner, name, value)


def filtered_root_logger(get_root_logger):
    """BasicSR's ``get_root_logger`` whose terminal handler gets a :class:`TerminalFilter`."""
    def get_filtered_root_logger(*args, **kwargs):
        logger = get_root_logger(*args, **kwargs)
        for handler in terminal_handlers(logger):
            if not any(isinstance(f, TerminalFilter) for f in handler.filters):
                handler.addFilter(TerminalFilter())
        return logger

    return get_filtered_root_logger


def _announce(opt, model, datasets):
    """Log the start banner (and a warning when the CPUs are busy)."""
    logger = logging.getLogger(LOGGER_NAME)
    for line in start_banner(opt, model, datasets):
        logger.info(line)
    if getattr(model, 'device', None) is not None and model.device.type == 'cpu':
        import torch

        warning = busy_machine_warning(torch.get_num_threads())
        if warning:
            logger.warning(warning)


@contextmanager
def run_session(request):
    """Apply the behaviour of the module docstring to the pipeline run inside, the one of ``request.stage``
    (a :class:`~sfmnet_plugin.launch.request.RunRequest`)."""
    import basicsr.test as basicsr_test
    import basicsr.train as basicsr_train
    import basicsr.utils.misc as basicsr_misc

    stage = request.stage
    pipeline = basicsr_train if stage == 'train' else basicsr_test
    datasets, folders, progress, locks = [], CreatedFolders(), RunProgress(), RunFolderLocks()
    build_dataset, build_model = pipeline.build_dataset, pipeline.build_model
    load_resume_state = basicsr_train.load_resume_state

    def locking_load_resume_state(opt):
        resume_state = load_resume_state(opt)
        if resume_state is not None and opt.get('rank', 0) == 0:
            locks.claim(opt['path']['experiments_root'])
        return resume_state

    def recording_build_dataset(dataset_opt):
        dataset = build_dataset(dataset_opt)
        datasets.append((dataset_opt.get('phase', 'test'), dataset))
        return dataset

    def announcing_build_model(opt):
        model = build_model(opt)
        if opt['is_train']:
            progress.total_iter = int(opt['train']['total_iter'])
        progress.wrap(model)
        _announce(opt, model, datasets)
        return model

    with ExitStack() as stack:
        _patch(stack, pipeline, 'build_dataset', recording_build_dataset)
        _patch(stack, pipeline, 'build_model', announcing_build_model)
        _patch(stack, pipeline, 'get_root_logger', filtered_root_logger(pipeline.get_root_logger))
        for name in ('get_env_info', 'dict2str'):  # the ASCII-art banner and the options: log file only
            function = getattr(pipeline, name)
            if name == 'dict2str':
                function = _logging_the_backend_in_use(function)
            _patch(stack, pipeline, name, lambda *args, _function=function: LogFileOnly(_function(*args)))
        if stage == 'train':
            _patch(stack, basicsr_train, 'MessageLogger', eta_message_logger_class(basicsr_train.MessageLogger))
        stack.callback(locks.release_all)
        for owner in (pipeline, basicsr_misc):  # the tb_logger folder, and make_exp_dirs
            if hasattr(owner, 'mkdir_and_rename'):
                _patch(stack, owner, 'mkdir_and_rename',
                       folders.wrap(locks.wrap_mkdir_and_rename(owner.mkdir_and_rename)))
        if stage == 'train':  # a resumed run uses its folder as it is (no mkdir_and_rename): lock it first
            _patch(stack, basicsr_train, 'load_resume_state', locking_load_resume_state)
        try:
            yield
        except BaseException:
            if not progress.started:
                folders.undo()
            raise
