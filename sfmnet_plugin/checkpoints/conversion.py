"""What every checkpoint converter shares: unwrapping, ``module.`` prefixes, the name-and-shape check, and the
recogniser of the networks that keep the official parameter names (:func:`recognise_same_names`)."""
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch


class CheckpointConversionError(ValueError):
    """The checkpoint does not have the layout it should; the message names the first offending key."""


@dataclass(frozen=True)
class OfficialNetwork:
    """A network recognised from a checkpoint's keys.

    Attributes:
        name: what was found, for people (e.g. ``'SPARNet-Light-Attn3D'``).
        network_options: BasicSR ``network_g`` options that build the plugin network the converted weights load
            into strictly.
        convert: ``official state dict (no module. prefix) -> plugin state dict``; checks every name and shape and
            raises :class:`CheckpointConversionError` naming the first mismatch.
    """

    name: str
    network_options: dict = field(compare=False)
    convert: Callable = field(compare=False, repr=False)


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict:
    """Remove the ``module.`` prefix that (Distributed)DataParallel adds to every key."""
    return {key[len('module.'):] if key.startswith('module.') else key: t for key, t in state_dict.items()}


def unwrap_checkpoint(checkpoint: Any) -> Any:
    """The state dict inside a checkpoint: BasicSR's ``params_ema``/``params``, a ``state_dict`` entry, or itself."""
    for key in ('params_ema', 'params', 'state_dict'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def format_keys(title: str, keys: Iterable[str], limit: int = 20) -> str:
    """``title (count): key, key, ... (N more)``, the keys sorted, at most ``limit`` shown."""
    keys = sorted(keys)
    shown = ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')
    return f'{title} ({len(keys)}): {shown}'


def expected_shapes(make_network) -> dict:
    """``{key: shape}`` of ``make_network()``'s state dict, built on the meta device (no memory, no init cost)."""
    with torch.device('meta'):
        return {key: tuple(t.shape) for key, t in make_network().state_dict().items()}


def check_names_and_shapes(state_dict, shapes, what) -> None:
    """Raise :class:`CheckpointConversionError` unless ``state_dict`` has exactly the keys and shapes of ``shapes``.

    The message starts with the first mismatch in the network's own key order (a missing or mis-shaped key, else
    the first unexpected key of the checkpoint), then lists every missing, unexpected and mis-shaped key.
    """
    missing = [key for key in shapes if key not in state_dict]
    unexpected = [key for key in state_dict if key not in shapes]
    mismatched = [key for key in shapes if key in state_dict and tuple(state_dict[key].shape) != tuple(shapes[key])]
    if not (missing or unexpected or mismatched):
        return
    wrong = set(missing) | set(mismatched)
    first_wrong = next((key for key in shapes if key in wrong), None)
    if first_wrong is None:
        first = f'unexpected key {unexpected[0]!r}'
    elif first_wrong not in state_dict:
        first = f'missing key {first_wrong!r}'
    else:
        first = (f'key {first_wrong!r} has shape {tuple(state_dict[first_wrong].shape)}, '
                 f'expected {tuple(shapes[first_wrong])}')
    details = [format_keys(title, keys) for title, keys in [
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', [f'{key} {tuple(state_dict[key].shape)} (expected {tuple(shapes[key])})'
                              for key in mismatched])] if keys]
    raise CheckpointConversionError(f'Not an official {what} state dict: first mismatch: {first}.\n  '
                                    + '\n  '.join(details))


def without_defaults(options: Mapping[str, Any], network: Callable) -> dict:
    """``options`` less the entries equal to ``network``'s constructor defaults (``type`` and ``upscale`` kept)."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(network).parameters.items()}
    return {key: value for key, value in options.items()
            if key in ('type', 'upscale') or defaults.get(key, inspect.Parameter.empty) != value}


def network_name(base: str, options: Mapping[str, Any]) -> str:
    """``base``, then the options other than ``type`` and ``upscale`` in parentheses, where there are any."""
    extra = ', '.join(f'{key}={value!r}' for key, value in options.items() if key not in ('type', 'upscale'))
    return f'{base} ({extra})' if extra else base


def _checked_unchanged(state_dict, network, options, name, check_values) -> dict:
    arguments = {key: value for key, value in options.items() if key != 'type'}
    check_names_and_shapes(state_dict, expected_shapes(partial(network, **arguments)), name)
    if check_values is not None:
        check_values(state_dict, name)
    return dict(state_dict)


def same_names_network(network: Callable, options: dict, name: str,
                       check_values: Callable | None = None) -> OfficialNetwork:
    """The :class:`OfficialNetwork` of a plugin network that keeps the official parameter names.

    Converting is checking: every key and shape must be those of ``network`` built from ``options`` (less ``type``)
    on the meta device, then ``check_values(state_dict, name)`` (where given) may check values; the state dict is
    returned unchanged.
    """
    return OfficialNetwork(name, options, partial(_checked_unchanged, network=network, options=options, name=name,
                                                  check_values=check_values))


def recognise_same_names(state_dict: Mapping[str, Any], markers: Iterable[str], network: Callable,
                         read_options: Callable[[Mapping[str, Any]], dict],
                         base_name: Callable[[dict], str] | None = None,
                         check_values: Callable | None = None) -> OfficialNetwork | None:
    """A network that keeps the official names, recognised by ``markers`` (keys it alone has), else None.

    ``read_options`` reads the ``network_g`` options off the (``module.``-free) state dict's shapes; those equal to
    ``network``'s constructor defaults (the official sizes) are left out, and the rest follow its name, the class
    name or ``base_name(options)``: ``'WFEN'``, ``'UFSRNet (num_feat=8)'``, ``'SISN x8 (num_feat=16)'``. Markers
    found without a key ``read_options`` needs is a damaged checkpoint of this network: CheckpointConversionError.
    """
    if not all(key in state_dict for key in markers):
        return None
    try:
        options = without_defaults(read_options(state_dict), network)
    except KeyError as error:  # a key the network is sized by is missing: this network's, but incomplete
        raise CheckpointConversionError(f'Not an official {network.__name__} state dict: missing key {error} (the '
                                        'network is sized by it); the file is incomplete or damaged.') from None
    base = base_name(options) if base_name else network.__name__
    return same_names_network(network, options, network_name(base, options), check_values)
