"""Check option values before BasicSR uses them: a wrong type or range is one line, not a traceback mid-run.

BasicSR takes the values as they come: ``lr: 1e-4`` is the *string* '1e-4' (YAML 1.1 needs a dot,
``1.0e-4``, for a float) and fails deep inside the optimizer; ``batch_size_per_gpu: 0`` fails in the
DataLoader after the experiment folder was made; ``print_freq: 0`` is a ``ZeroDivisionError`` at the
first iteration; ``num_gpu: 4`` on a one-GPU machine fails in CUDA. ``--force_yml`` values are parsed
the same way, so they get the same checks. :func:`option_value_problems` returns one message per
problem, naming the option, the value and what is expected; names that become folder or file names
(``name``, dataset ``name``\\ s, ``val.suffix``) must be plain names (no path).
"""
import math
import re

from sfmnet_plugin.utils.output_paths import is_plain_name

# How YAML 1.1 (PyYAML) reads a number in scientific notation without a dot: as text.
_SCIENTIFIC_TEXT = re.compile(r'^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$')
_NUMBER_TEXT = re.compile(r'^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$')

# (section path, key) -> (kind, minimum): 'int' a whole number, 'number' any number; minimum inclusive
# unless it is written as ('>', value).
_TOP = {'scale': ('int', 1), 'manual_seed': ('int', 0)}
_DATASET = {'batch_size_per_gpu': ('int', 1), 'num_worker_per_gpu': ('int', 0), 'dataset_enlarge_ratio': ('int', 1),
            'scale': ('int', 1), 'gt_size': ('int', 1), 'num_prefetch_queue': ('int', 1)}
_TRAIN = {'total_iter': ('int', 1), 'warmup_iter': ('int', -1), 'ema_decay': ('number', 0)}
_LOGGER = {'print_freq': ('int', 1), 'save_checkpoint_freq': ('int', 1)}
_VAL = {'val_freq': ('int', 1)}
_OPTIMIZER = {'lr': ('number', ('>', 0)), 'weight_decay': ('number', 0), 'momentum': ('number', 0),
              'eps': ('number', ('>', 0))}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_problem(place, value, kind, minimum):
    """Why ``value`` of option ``place`` is not a ``kind`` >= ``minimum``, or None."""
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        hint = (f' (YAML reads {value} without a dot as text: write {_as_float_text(value)})'
                if _SCIENTIFIC_TEXT.match(value.strip()) else ' (remove the quotes)')
        return f'{place}: {value!r} is text, not a number{hint}'
    if _is_number(value) and not math.isfinite(value):
        return f'{place}: {value} is not a finite number; write the value the run should use'
    if not _is_number(value) or (kind == 'int' and float(value) != int(value)):
        expected = 'a whole number' if kind == 'int' else 'a number'
        return f'{place}: {value!r} is not {expected}'
    strict = isinstance(minimum, tuple)
    bound = minimum[1] if strict else minimum
    if value < bound or (strict and value == bound):
        return f'{place}: {value!r} must be {">" if strict else ">="} {bound}'
    return None


def _as_float_text(text):
    mantissa, _, exponent = text.strip().lower().partition('e')
    return f'{mantissa if "." in mantissa else mantissa + ".0"}e{exponent}'


def _check_section(problems, section, place, table):
    if not isinstance(section, dict):
        return
    for key, (kind, minimum) in table.items():
        if section.get(key) is not None:
            problem = _value_problem(f'{place}.{key}' if place else key, section[key], kind, minimum)
            if problem:
                problems.append(problem)


# Keys whose values are text by nature (names, types, paths): a value like 1e5 there is meant as text.
_TEXT_KEYS = {'name', 'type', 'suffix', 'path'}


def _scientific_text_anywhere(problems, value, place):
    """Any other value written like 1e-4: YAML made it text, BasicSR would fail on it later."""
    if isinstance(value, dict):
        for key, child in value.items():
            if not (isinstance(key, str) and (key in _TEXT_KEYS or key.startswith('dataroot'))):
                _scientific_text_anywhere(problems, child, f'{place}.{key}' if place else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _scientific_text_anywhere(problems, child, f'{place}[{index}]')
    elif isinstance(value, str) and _SCIENTIFIC_TEXT.match(value.strip()):
        problem = f'{place}: {value!r} is text, not a number (YAML reads {value} without a dot as text: write ' \
                  f'{_as_float_text(value)})'
        if problem not in problems and not any(p.startswith(f'{place}: ') for p in problems):
            problems.append(problem)


def _non_finite_anywhere(problems, value, place):
    """Any ``.nan``/``.inf`` value (YAML reads them as floats): no option of a run means one."""
    if isinstance(value, dict):
        for key, child in value.items():
            _non_finite_anywhere(problems, child, f'{place}.{key}' if place else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _non_finite_anywhere(problems, child, f'{place}[{index}]')
    elif isinstance(value, float) and not math.isfinite(value):
        problem = f'{place}: {value} is not a finite number; write the value the run should use'
        if not any(p.startswith(f'{place}: ') for p in problems):
            problems.append(problem)


def _num_gpu_problem(value):
    if value is None or value == 'auto':
        return None
    if not _is_number(value) or value != int(value) or value < 0:
        return f"num_gpu: {value!r} must be 'auto' or a whole number >= 0"
    import torch

    available = torch.cuda.device_count()
    if value > available:
        if not available:
            return f'num_gpu: {value} but this machine has no GPU; use num_gpu: auto or 0 (the CPU)'
        return (f'num_gpu: {value} but this machine has {available} GPU{"s" if available != 1 else ""}; use '
                f'num_gpu: auto or at most {available}')
    return None


def name_problems(opt):
    """Names that become folder or file names under experiments/ or results/ and are not plain names."""
    problems = []

    def check(place, value):
        if value is not None and not is_plain_name(value):
            problems.append(f'{place}: {value!r} is not a plain name: it becomes a folder or file name under '
                            'experiments/ or results/, never a path; use letters, digits, ".", "_" and "-", '
                            'starting with a letter or digit')

    name = opt.get('name', '')
    if not isinstance(name, str):  # null or a number: BasicSR joins it into paths as text
        problems.append(f'name: {name!r} must be a text name (letters, digits, ".", "_" and "-"); it names the '
                        'experiment or results folder')
    else:
        check('name', name)
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict):
            check(f'datasets.{phase}.name', dataset.get('name'))
    if isinstance(opt.get('val'), dict):
        check('val.suffix', opt['val'].get('suffix'))
    return problems


def option_value_problems(opt):
    """Every wrong value type or range (and path-like name) of the merged options ``opt``, as messages."""
    if not isinstance(opt, dict):
        return []
    problems = name_problems(opt)
    _check_section(problems, opt, '', _TOP)
    problem = _num_gpu_problem(opt.get('num_gpu'))
    if problem:
        problems.append(problem)
    for phase, dataset in (opt.get('datasets') or {}).items():
        _check_section(problems, dataset, f'datasets.{phase}', _DATASET)
    train = opt.get('train')
    _check_section(problems, train, 'train', _TRAIN)
    problems[:] = [f'{p}: the run would train zero iterations' if p.startswith('train.total_iter: ') and 'must be' in p
                   else p for p in problems]
    if isinstance(train, dict):
        for key, section in train.items():
            if isinstance(key, str) and key.startswith('optim_'):
                _check_section(problems, section, f'train.{key}', _OPTIMIZER)
    _check_section(problems, opt.get('logger'), 'logger', _LOGGER)
    _check_section(problems, opt.get('val'), 'val', _VAL)
    _scientific_text_anywhere(problems, opt, '')
    _non_finite_anywhere(problems, opt, '')
    return problems
