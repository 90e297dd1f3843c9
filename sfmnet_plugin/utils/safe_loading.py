"""The only ways the plugin reads YAML and torch files: data, never code.

A YAML file can construct arbitrary Python objects (``!!python/object/apply:os.system``) under
PyYAML's full loader, which BasicSR's ``parse_options`` and mmengine's ``Config`` use; a pickled
``.pth``/``.state`` file runs code when ``torch.load`` unpickles it without ``weights_only``.
Every option file, base file, checkpoint and training state goes through :func:`load_yaml_file`
or :func:`load_torch_file`, which accept plain data only and turn a bad file into one line that
names it (:class:`UnsafeOrInvalidFileError`).
"""
import io
from collections import OrderedDict
from os import path as osp

import yaml


class UnsafeOrInvalidFileError(ValueError):
    """A file that cannot be read as plain data (an unsafe tag, a syntax error, a corrupt or code-carrying pickle)."""


class NonFiniteWeightsError(UnsafeOrInvalidFileError):
    """A checkpoint or training state holding NaN or inf: weights of a diverged run, useless for anything."""


# Values an option file may expand to through YAML aliases (real option files have a few hundred).
MAX_YAML_VALUES = 100_000


class SafePlainLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose refusal of a tag it does not know is one line naming the file and line.

    That refusal is what keeps ``!!python/object/apply:os.system`` from running; it happens for
    every caller of this loader, BasicSR's ``parse_options`` included. Aliases are bounded too: a few
    lines of nested aliases (a "billion laughs" file) expand to billions of values once anything walks
    the options (merging, copying, printing them); a document that would expand to more than
    :data:`MAX_YAML_VALUES` values, or an alias inside its own anchor, is refused before it is built.
    """

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node, getattr(self, 'name', '<yaml>'))
        return node


def _check_expanded_size(root, name):
    """Raise :class:`UnsafeOrInvalidFileError` if the node graph ``root`` expands to too many values."""
    sizes, in_progress = {}, set()

    def expanded(node):
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise UnsafeOrInvalidFileError(f'{name}: line {node.start_mark.line + 1}: a YAML alias refers to its own '
                                           'anchor (a recursive structure); option files cannot hold one.')
        in_progress.add(key)
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(expanded(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(expanded(k) + expanded(v) for k, v in node.value)
        else:
            size = 1
        if size > MAX_YAML_VALUES:
            raise UnsafeOrInvalidFileError(
                f'{name}: line {node.start_mark.line + 1}: YAML aliases expand this document to more than '
                f'{MAX_YAML_VALUES:,} values (an alias bomb?); option files need far fewer: write the values out.')
        in_progress.discard(key)
        sizes[key] = size
        return size

    expanded(root)


def _refuse_tag(loader, node):
    name = getattr(loader, 'name', '<yaml>')
    tag = node.tag.replace('tag:yaml.org,2002:', '!!')
    raise UnsafeOrInvalidFileError(
        f'{name}: line {node.start_mark.line + 1}: YAML tag {tag!r} is not allowed (option files are read with a '
        'safe loader: Python object tags are never executed; remove the tag).')


SafePlainLoader.add_constructor(None, _refuse_tag)


class SafeOrderedLoader(SafePlainLoader):
    """:class:`SafePlainLoader` that keeps mappings in file order (what BasicSR's ``ordered_yaml`` loader did)."""


SafeOrderedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: OrderedDict(loader.construct_pairs(node)))


def _yaml_problem(error):
    """One line from a PyYAML error: the first message and its line number."""
    mark = getattr(error, 'problem_mark', None) or getattr(error, 'context_mark', None)
    where = f'line {mark.line + 1}: ' if mark is not None else ''
    problem = getattr(error, 'problem', None) or str(error).splitlines()[0]
    context = getattr(error, 'context', None)
    return f'{where}{(context + ", ") if context else ""}{problem}'.strip()


def load_yaml_text(stream, name, ordered=False):
    """Parse YAML ``stream`` (text or file object) with a safe loader; ``name`` appears in the error."""
    if isinstance(stream, str):
        stream = io.StringIO(stream)
        stream.name = name  # what PyYAML (and so a refused tag's message) calls the stream
    try:
        return yaml.load(stream, Loader=SafeOrderedLoader if ordered else SafePlainLoader)
    except yaml.YAMLError as error:
        raise UnsafeOrInvalidFileError(f'{name}: {_yaml_problem(error)}') from error


def load_yaml_file(path, ordered=False):
    """The plain data (dicts, lists, strings, numbers) of the YAML file at ``path``, read with a safe loader.

    ``ordered`` returns OrderedDicts, as BasicSR's option parser does. A missing file is a
    FileNotFoundError, an unsafe tag or a syntax error an :class:`UnsafeOrInvalidFileError`; both name ``path``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file.')
    try:
        with open(path, encoding='utf-8') as f:
            return load_yaml_text(f, path, ordered=ordered)
    except UnicodeDecodeError as error:
        raise UnsafeOrInvalidFileError(f'{path}: not a UTF-8 text file (byte {error.start}: {error.reason}); '
                                       'save the option file as UTF-8.') from error


def load_torch_file(path, map_location='cpu', what='checkpoint'):
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers only, never code.

    Anything else (a pickle that would import or call something, a truncated, empty or non-torch
    file) is an :class:`UnsafeOrInvalidFileError` naming ``path``, ``what`` it was meant to be and the cause.
    A file with a NaN or infinite floating-point tensor is a :class:`NonFiniteWeightsError` naming the first
    one: a network that swallows NaN still writes plausible images, so such weights are never used.
    """
    return refuse_nonfinite(_load_plain_data(path, map_location, what), path, what)


def refuse_nonfinite(loaded, path, what='checkpoint'):
    """``loaded`` (the data read from ``path``), or a :class:`NonFiniteWeightsError` naming its first NaN or
    infinite floating-point tensor. Every reader of weights calls it, whatever the file format."""
    from sfmnet_plugin.utils.nonfinite import first_nonfinite_tensor

    bad = first_nonfinite_tensor(loaded)
    if bad is not None:
        raise NonFiniteWeightsError(
            f'{what} {path}: refused, tensor {bad} is not finite (NaN or inf): these are the weights of a run that '
            'diverged; use an earlier checkpoint.')
    return loaded


def _load_plain_data(path, map_location, what):
    import pickle

    import torch

    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path}: no such file.')
    if osp.getsize(path) == 0:
        raise UnsafeOrInvalidFileError(f'{what} {path}: the file is empty.')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses what is not plain data: a crafted pickle (it names the blocked global), a pickle of
        # custom classes, or bytes that are no pickle at all.
        raise UnsafeOrInvalidFileError(
            f'{what} {path}: refused, not a plain-data torch file ({_cause(error)}); checkpoints and states are '
            'loaded with torch.load(weights_only=True), which never runs code from the file.') from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, IndexError) as error:
        raise UnsafeOrInvalidFileError(f'{what} {path}: not a readable torch file, truncated or corrupt '
                                       f'({_cause(error)}).') from error


# Boilerplate paragraphs of torch's weights_only error around the one line that says what was refused.
_TORCH_BOILERPLATE = ('Weights only load failed', 'Please file an issue', 'Check the documentation', 'In PyTorch 2.6')


def _cause(error):
    """The informative line of a torch.load error (torch wraps it in paragraphs of advice)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_TORCH_BOILERPLATE)]
    return (useful or lines or [type(error).__name__])[0].split('. ')[0].rstrip('.')
