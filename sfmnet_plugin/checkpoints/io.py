"""Reading and writing network checkpoints in either format: pickle-free ``.safetensors`` or weights-only ``.pth``.

In memory a checkpoint is BasicSR's dict, whatever the file: ``{'params': state_dict}`` (``params_ema`` beside it
for an EMA model), plus ``network_g`` (the options that build the network, for a checkpoint the plugin wrote).

On disk:

* ``.pth``: that dict, ``torch.save``d; read with ``torch.load(weights_only=True)``.
* ``.safetensors`` (the format traiNNer-redux, spandrel/chaiNNer and Hugging Face use; it holds tensors and a JSON
  header, never code): a network saved with one state dict (``params``) keeps its plain parameter names, so other
  tools load it as is; several (``params`` and ``params_ema``) are stored as ``<param key>.<name>``. The header's
  metadata (strings) holds ``param_keys`` and the network options (``network_g``, or ``network_d`` ...) as JSON.
  A safetensors file from another tool (no ``param_keys``) is read as ``{'params': its tensors}``.

Which reader runs is decided by the file's content (a safetensors header), not only its suffix, so a renamed file is
still read safely; neither reader can run code from the file.
"""
import json
import struct
from os import path as osp

from sfmnet_plugin.utils.atomic import atomic_write, atomic_write_bytes
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file, refuse_nonfinite

SAFETENSORS_SUFFIX = '.safetensors'
NETWORK_FORMATS = {'pth': '.pth', 'safetensors': SAFETENSORS_SUFFIX}  # path.network_format -> file suffix
PARAM_KEYS = 'param_keys'  # safetensors metadata: JSON list of the state dicts stored in the file
_MAX_HEADER = 100 * 2**20  # safetensors' own limit on the JSON header


def is_safetensors_file(path):
    """Whether ``path`` is (named or looks like) a safetensors file: an 8-byte header length, then a JSON object."""
    if str(path).endswith(SAFETENSORS_SUFFIX):
        return True
    try:
        with open(path, 'rb') as f:
            start = f.read(9)
        size = osp.getsize(path)
    except OSError:
        return False
    if len(start) < 9:
        return False
    header_length = struct.unpack('<Q', start[:8])[0]
    return 2 <= header_length <= min(_MAX_HEADER, size - 8) and start[8:9] == b'{'


def _json_metadata(metadata, key, path, what):
    try:
        return json.loads(metadata[key])
    except (TypeError, ValueError) as error:
        raise UnsafeOrInvalidFileError(f'{what} {path}: safetensors metadata {key!r} is not JSON ({error}).') from error


def load_safetensors_checkpoint(path, map_location='cpu', what='checkpoint'):
    """The BasicSR checkpoint dict stored in the safetensors file ``path`` (see the module docstring)."""
    from safetensors import SafetensorError, safe_open

    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path}: no such file.')
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as error:
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeOrInvalidFileError(f'{what} {path}: not a readable safetensors file, truncated or corrupt '
                                       f'({cause}).') from error
    refuse_nonfinite(tensors, path, what)  # the check every .pth gets too (load_torch_file)
    if isinstance(map_location, str) or type(map_location).__name__ == 'device':
        tensors = {key: tensor.to(map_location) for key, tensor in tensors.items()}
    param_keys = _json_metadata(metadata, PARAM_KEYS, path, what) if PARAM_KEYS in metadata else ['params']
    if not isinstance(param_keys, list) or not param_keys or not all(isinstance(key, str) for key in param_keys):
        raise UnsafeOrInvalidFileError(f'{what} {path}: safetensors metadata {PARAM_KEYS!r} must be a non-empty JSON '
                                       f'list of names, got {metadata[PARAM_KEYS]!r}; the file is damaged.')
    if len(param_keys) == 1:
        checkpoint = {param_keys[0]: tensors}
    else:
        checkpoint = {key: {} for key in param_keys}
        for name, tensor in tensors.items():
            key, _, parameter = name.partition('.')
            if key not in checkpoint:
                raise UnsafeOrInvalidFileError(f'{what} {path}: tensor {name!r} belongs to none of the state dicts '
                                               f'{param_keys} its metadata lists.')
            checkpoint[key][parameter] = tensor
    for key in metadata:
        if key.startswith('network_'):
            checkpoint[key] = _json_metadata(metadata, key, path, what)
            if not isinstance(checkpoint[key], dict):
                raise UnsafeOrInvalidFileError(f'{what} {path}: safetensors metadata {key!r} must be a JSON object '
                                               f'(the network options), got {metadata[key]!r}.')
    return checkpoint


def load_checkpoint_file(path, map_location='cpu', what='checkpoint'):
    """A network checkpoint, ``.safetensors`` or ``.pth``, as BasicSR's dict; never runs code from the file.

    A missing file is a FileNotFoundError; anything unreadable an :class:`UnsafeOrInvalidFileError` naming ``path``.
    """
    if is_safetensors_file(path):
        return load_safetensors_checkpoint(path, map_location, what)
    return load_torch_file(path, map_location=map_location, what=what)


def plain_options(options):
    """``options`` as plain JSON data (dicts, lists, strings, numbers): what both formats can store."""
    return json.loads(json.dumps(options))


def stored_network_options(checkpoint, network='network_g'):
    """The ``network`` options a checkpoint carries (the plugin saves them beside ``params``), or None.

    :func:`load_checkpoint_file` reads them from a ``.pth``'s dict or a ``.safetensors`` header alike.
    """
    options = checkpoint.get(network) if isinstance(checkpoint, dict) else None
    return dict(options) if isinstance(options, dict) and 'type' in options else None


def save_checkpoint_file(state_dicts, path, options=None, network_format=None):
    """Write ``{param key: state dict}`` (and ``options``: ``{'network_g': {...}}``) to ``path``, atomically.

    ``network_format``: ``pth`` or ``safetensors``; by default the suffix decides (``.safetensors``, else a ``.pth``).
    Tensors are saved from the CPU.
    """
    if network_format is None:
        network_format = 'safetensors' if str(path).endswith(SAFETENSORS_SUFFIX) else 'pth'
    if network_format not in NETWORK_FORMATS:
        raise ValueError(f'network format must be one of {sorted(NETWORK_FORMATS)}, got {network_format!r}.')
    state_dicts = {key: {name: tensor.detach().cpu() for name, tensor in state.items()}
                   for key, state in state_dicts.items()}
    options = {key: plain_options(value) for key, value in (options or {}).items() if value is not None}
    if network_format == 'pth':
        import torch

        atomic_write(path, lambda partial: torch.save({**state_dicts, **options}, partial))
        return
    from safetensors.torch import save

    if len(state_dicts) == 1:
        tensors = next(iter(state_dicts.values()))
    else:
        tensors = {f'{key}.{name}': tensor for key, state in state_dicts.items() for name, tensor in state.items()}
    metadata = {'format': 'pt', PARAM_KEYS: json.dumps(list(state_dicts)),
                **{key: json.dumps(value) for key, value in options.items()}}
    # safetensors refuses tensors that share memory or are not contiguous; a state dict may hold views
    tensors = {name: tensor.contiguous().clone() for name, tensor in tensors.items()}
    # serialised in memory and written by Python: a failed write is an OSError like every other output's
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def network_path(models_dir, label, network_format='pth'):
    """``<models_dir>/<label><suffix>`` for ``path.network_format`` (``pth`` or ``safetensors``)."""
    return osp.join(models_dir, f'{label}{NETWORK_FORMATS[network_format]}')


def existing_network_file(path):
    """``path`` if it exists, else its ``.safetensors``/``.pth`` sibling that does (a run saved in the other
    format, e.g. resumed after ``path.network_format`` changed); ``path`` when neither exists."""
    if osp.exists(path):
        return path
    stem = osp.splitext(path)[0]
    for suffix in NETWORK_FORMATS.values():
        if osp.exists(stem + suffix):
            return stem + suffix
    return path
