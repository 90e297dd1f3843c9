"""Option files that inherit: ``_base_`` keys resolved before BasicSR reads the file.

BasicSR's ``parse_options`` opens the ``-opt`` path itself, so inheritance is a pre-processing
step: the file and its bases are merged with mmengine's ``Config`` (nested dicts merge key by
key; ``_delete_: true`` inside a dict replaces the base's dict instead of merging), the result is
written under the original file name into a fresh temporary folder, and ``-opt`` is pointed at
it. BasicSR then copies that merged file into the experiment folder, so what is saved with a run
is exactly what it ran with.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from os import path as osp

import yaml

BASE_KEY = '_base_'


def has_base(option_path):
    """Whether the YAML file at ``option_path`` declares ``_base_``."""
    with open(option_path, encoding='utf-8') as f:
        content = yaml.safe_load(f)
    if not isinstance(content, dict):
        raise ValueError(f'Option file {option_path!r} must hold a mapping at the top level.')
    return BASE_KEY in content


def load_merged_options(option_path):
    """Return the options of ``option_path`` with every ``_base_`` file merged in, as a plain dict."""
    from mmengine.config import Config

    if not osp.isfile(option_path):
        raise FileNotFoundError(f'Option file not found: {option_path!r}')
    return Config.fromfile(option_path).to_dict()


def write_merged_options(option_path, out_dir):
    """Merge ``option_path`` with its bases into ``out_dir/<same file name>`` and return that path."""
    merged_path = osp.join(out_dir, osp.basename(option_path))
    with open(merged_path, 'w', encoding='utf-8') as f:
        f.write(f'# Merged from {osp.abspath(option_path)} and its _base_ files.\n')
        yaml.safe_dump(load_merged_options(option_path), f, sort_keys=False, default_flow_style=None)
    return merged_path


def _option_argument_index(argv):
    for i, arg in enumerate(argv[:-1]):
        if arg == '-opt':
            return i + 1
    return None


@contextmanager
def resolved_option_argv(argv):
    """Yield ``argv`` with its ``-opt`` file replaced by the merged file when it uses ``_base_``.

    The temporary folder lives as long as the ``with`` block (the whole run).
    """
    index = _option_argument_index(argv)
    if index is None or not has_base(argv[index]):
        yield list(argv)
        return
    out_dir = tempfile.mkdtemp(prefix='sfmnet_options_')
    try:
        resolved = list(argv)
        resolved[index] = write_merged_options(argv[index], out_dir)
        yield resolved
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


ROOT_PATH_VARIABLE = 'SFMNET_ROOT_PATH'


def default_root_path():
    """Where ``experiments/``, ``results/`` and ``tb_logger/`` go.

    ``$SFMNET_ROOT_PATH`` when set; otherwise the repository root for a source checkout (also an
    editable install) and the current directory for a package installed into site-packages:
    never inside site-packages.
    """
    if os.environ.get(ROOT_PATH_VARIABLE):
        return osp.abspath(os.environ[ROOT_PATH_VARIABLE])
    package_parent = osp.dirname(osp.dirname(osp.abspath(__file__)))
    if osp.isfile(osp.join(package_parent, 'setup.py')) and osp.isdir(osp.join(package_parent, 'options')):
        return package_parent
    return os.getcwd()
