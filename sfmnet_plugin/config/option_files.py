"""Option files that inherit: ``_base_`` keys resolved before BasicSR reads the file.

BasicSR's ``parse_options`` opens the ``-opt`` path itself, so inheritance is a pre-processing
step: the file and its bases are merged with mmengine's ``Config`` semantics (``_base_`` is a
path or a list of paths relative to the file; nested dicts merge key by key; ``_delete_: true``
inside a dict replaces the base's dict instead of merging); the launcher writes the result under
the original file name into a fresh temporary folder (:func:`write_merged_options`) and points
``-opt`` at it. BasicSR then copies that merged file into the experiment folder, so what is saved
with a run is exactly what it ran with.

``--force_yml`` entries are applied to the merged options too (:func:`apply_overrides`), instead of
by BasicSR's ``exec`` of a string built from the command line. Every file is read here with a safe YAML loader
(:func:`sfmnet_plugin.utils.safe_loading.load_yaml_file`) rather than by mmengine, whose loader builds
Python objects from YAML tags and which would execute a ``.py`` base file: bases must be YAML
(or JSON) files.
"""
import os
from os import path as osp

import yaml

from sfmnet_plugin.utils.output_paths import OutputPathError
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_yaml_file, load_yaml_text

BASE_KEY = '_base_'
DELETE_KEY = '_delete_'
_OPTION_FILE_SUFFIXES = ('.yml', '.yaml', '.json')


class OptionFileError(UnsafeOrInvalidFileError):
    """An option file that cannot be used: unsafe or invalid YAML, a bad ``_base_``, a wrong top-level type."""


def read_option_file(option_path):
    """The top-level mapping of one option file (no ``_base_`` resolution), read with a safe loader."""
    if not osp.isfile(option_path):
        raise FileNotFoundError(f'Option file not found: {option_path!r} (relative paths start at {os.getcwd()}).')
    try:
        content = load_yaml_file(option_path)
    except UnsafeOrInvalidFileError as error:
        raise OptionFileError(str(error)) from error
    if not isinstance(content, dict):
        raise OptionFileError(f'{option_path}: an option file must hold a mapping (key: value lines) at the top level.')
    return content


def merge_options(child, base):
    """``child`` merged into ``base`` (neither is modified): mmengine's rule, with ``_delete_: true`` as a reset."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict):
            value = dict(value)
            reset = value.pop(DELETE_KEY, False)
            if key in merged and not reset:
                if not isinstance(merged[key], dict):
                    raise OptionFileError(f'{key!r} is a mapping here but a {type(merged[key]).__name__} in the base '
                                          f'file; add "{DELETE_KEY}: true" to replace it.')
                value = merge_options(value, merged[key])
            else:
                value = merge_options(value, {})  # drops nested _delete_ markers
        merged[key] = value
    return merged


def _base_paths(option_path, content):
    bases = content.get(BASE_KEY, [])
    bases = bases if isinstance(bases, list) else [bases]
    paths = []
    for base in bases:
        if not isinstance(base, str) or not base.endswith(_OPTION_FILE_SUFFIXES):
            raise OptionFileError(f'{option_path}: {BASE_KEY} {base!r} must name YAML/JSON option files '
                                  f'({", ".join(_OPTION_FILE_SUFFIXES)}); Python config files are never executed.')
        paths.append(osp.normpath(osp.join(osp.dirname(osp.abspath(option_path)), osp.expanduser(base))))
    return paths


def load_merged_options(option_path):
    """Return the options of ``option_path`` with every ``_base_`` file merged in, as a plain dict.

    Bases are merged in order (two bases may not set the same top-level key, as in mmengine), then
    the file itself on top. Every file is read with a safe loader; errors name the file.
    """
    return merge_bases(option_path, read_option_file(option_path))


def merge_bases(option_path, content, _chain=()):
    """``content`` (the mapping read from ``option_path``) with its ``_base_`` files merged in."""
    here = osp.abspath(option_path)
    if here in _chain:
        raise OptionFileError(f'{option_path}: {BASE_KEY} files include each other: '
                              + ' -> '.join([*_chain, here]))
    merged_bases, owner = {}, {}
    for base_path in _base_paths(option_path, content):
        if not osp.isfile(base_path):
            raise OptionFileError(f'{option_path}: {BASE_KEY} file not found: {base_path}')
        base = merge_bases(base_path, read_option_file(base_path), (*_chain, here))
        for key in base:
            if key in owner:
                raise OptionFileError(f'{option_path}: key {key!r} is set by two {BASE_KEY} files, '
                                      f'{owner[key]} and {base_path}.')
            owner[key] = base_path
        merged_bases.update(base)
    child = {key: value for key, value in content.items() if key != BASE_KEY}
    try:
        return merge_options(child, merged_bases)
    except OptionFileError as error:
        raise OptionFileError(f'{option_path}: {error}') from error


FORCE_YML = '--force_yml'


def override_value(text):
    """A ``--force_yml`` value as BasicSR reads it (``none``/``~`` -> None, ``!!float 2e-4``, ``[1, 2]``), parsed as
    YAML with a safe loader instead of ``eval``."""
    text = text.strip()
    if text.lower() == 'none':
        return None
    return load_yaml_text(text, f'{FORCE_YML} value {text!r}')


def apply_overrides(options, entries):
    """Set every ``--force_yml`` entry (``section:key=value``) in ``options``; returns ``options``.

    As in BasicSR, the sections on the way must exist and the last key may be new.
    """
    for entry in entries:
        keys, sep, value = entry.partition('=')
        path = [key.strip() for key in keys.split(':')]
        if not sep or not all(path):
            raise OptionFileError(f'{FORCE_YML} {entry!r}: expected section:key=value, e.g. train:ema_decay=0.999.')
        section = options
        for depth, key in enumerate(path[:-1]):
            if not isinstance(section.get(key), dict):
                raise OptionFileError(f'{FORCE_YML} {entry!r}: the options have no section '
                                      f'{":".join(path[:depth + 1])!r}.')
            section = section[key]
        section[path[-1]] = override_value(value)
    return options


def write_merged_options(options, source_path, out_dir, overrides=()):
    """Write ``options`` (``source_path`` merged with its bases, ``overrides`` applied) to
    ``out_dir/<source file name>``, with a header naming where they came from; returns the path."""
    merged_path = osp.join(out_dir, osp.basename(source_path))
    with open(merged_path, 'w', encoding='utf-8') as f:
        f.write(f'# Merged from {osp.abspath(source_path)} and its _base_ files.\n')
        f.writelines(f'# {FORCE_YML} {entry}\n' for entry in overrides)
        yaml.safe_dump(options, f, sort_keys=False, default_flow_style=None)
    return merged_path


ROOT_PATH_VARIABLE = 'SFMNET_ROOT_PATH'


def default_root_path():
    """Where ``experiments/``, ``results/`` and ``tb_logger/`` go.

    ``$SFMNET_ROOT_PATH`` when set; otherwise the repository root for a source checkout (also an
    editable install) and the current directory for a package installed into site-packages:
    never inside site-packages.
    """
    if os.environ.get(ROOT_PATH_VARIABLE):
        root = osp.abspath(os.environ[ROOT_PATH_VARIABLE])
        try:
            root.encode('utf-8')
        except UnicodeEncodeError:  # bytes that are no UTF-8: the logs and option copies under it could not say it
            raise OutputPathError(f'${ROOT_PATH_VARIABLE} {root.encode("utf-8", "surrogateescape")!r}: not valid '
                                  'UTF-8; choose a folder whose name is.') from None
        return root
    package_parent = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # <checkout>/sfmnet_plugin/config
    if osp.isfile(osp.join(package_parent, 'setup.py')) and osp.isdir(osp.join(package_parent, 'options')):
        return package_parent
    return os.getcwd()
