"""What a run shows on the terminal: a one-screen start banner instead of BasicSR's ~1,150 lines.

The terminal gets the banner (network and parameters, data sizes, iterations, device and threads, where the log
goes); BasicSR's ASCII art, options and network structure (the builders' "... is created" lines and its training
statistics, which the banner sums up) still go to the log file, in full. The run
(:mod:`sfmnet_plugin.launch.session`) installs :func:`filtered_root_logger`, :func:`log_file_only` and
:func:`announce`.
"""
import logging
import math
from os import path as osp

from sfmnet_plugin.utils.process_settings import busy_machine_warning

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


def terminal_handlers(logger):
    return [handler for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)]


def log_file_of(logger):
    files = [h.baseFilename for h in logger.handlers if isinstance(h, logging.FileHandler)]
    return files[0] if files else None


def parameter_count(net):
    return sum(p.numel() for p in net.parameters())


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
        lines.append(f'  {label:<9} {type(net).__name__}, {parameter_count(net):,} parameters')
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


def log_file_only(function):
    """BasicSR's ``get_env_info`` or ``dict2str``, whose text goes to the log file only."""
    def logged_to_file_only(*args):
        return LogFileOnly(function(*args))

    return logged_to_file_only


def logging_the_backend_in_use(dict2str):
    """BasicSR's ``dict2str`` that shows ``dist_params.backend`` as the process group runs it: on CPU the plugin's
    ``init_dist`` starts gloo whatever the option file says (BasicSR's ``nccl`` default is for GPUs)."""
    def logged(opt, *args):
        import torch.distributed as dist

        if isinstance(opt, dict) and dist.is_available() and dist.is_initialized():
            opt = dict(opt, dist_params=dict(opt.get('dist_params') or {}, backend=dist.get_backend()))
        return dict2str(opt, *args)

    return logged


def filtered_root_logger(get_root_logger):
    """BasicSR's ``get_root_logger`` whose terminal handler gets a :class:`TerminalFilter`."""
    def get_filtered_root_logger(*args, **kwargs):
        logger = get_root_logger(*args, **kwargs)
        for handler in terminal_handlers(logger):
            if not any(isinstance(f, TerminalFilter) for f in handler.filters):
                handler.addFilter(TerminalFilter())
        return logger

    return get_filtered_root_logger


def announce(opt, model, datasets):
    """Log the start banner (and a warning when the CPUs are busy)."""
    logger = logging.getLogger(LOGGER_NAME)
    for line in start_banner(opt, model, datasets):
        logger.info(line)
    if getattr(model, 'device', None) is not None and model.device.type == 'cpu':
        import torch

        warning = busy_machine_warning(torch.get_num_threads())
        if warning:
            logger.warning(warning)
