"""A network's ``network_g`` options: its registered type and its scale factor, checked with one-line errors."""
import inspect

from basicsr.utils.registry import ARCH_REGISTRY

from sfmnet_plugin.config.option_files import load_merged_options

FACE_SIZE = 128  # HR face size of the FSR benchmarks: the LR size to suggest is FACE_SIZE / scale
SCALE_OPTION_NAMES = ('upscale', 'scale')  # what BasicSR architectures call their factor


class InferenceError(Exception):
    """A problem with the network options or the checkpoint; its message is one line meant for the user."""


def architecture(options):
    """The class registered for ``options['type']``."""
    try:
        return ARCH_REGISTRY.get(options['type'])
    except KeyError as error:
        raise InferenceError(f"network_g type {options['type']!r} is not a registered BasicSR architecture.") from error


def apply_scale(options, scale):
    """Set the network's factor: the ``upscale``/``scale`` key it has, else the one its constructor takes."""
    names = [name for name in SCALE_OPTION_NAMES if name in options]
    if not names:
        parameters = inspect.signature(architecture(options)).parameters
        names = [name for name in SCALE_OPTION_NAMES if name in parameters]
    if not names:
        raise InferenceError(f"scale: network_g type {options['type']!r} has no upscale or scale option.")
    options[names[0]] = scale


def declared_scale(options):
    """The factor network_g states, or its constructor's default; None if it has neither."""
    for name in SCALE_OPTION_NAMES:
        if name in options:
            return options[name]
    parameters = inspect.signature(architecture(options)).parameters
    defaults = [parameters[name].default for name in SCALE_OPTION_NAMES if name in parameters]
    return defaults[0] if defaults and isinstance(defaults[0], int) else None


def network_options_from_file(option_path) -> dict:
    """``network_g`` of a BasicSR option file (``_base_`` inheritance resolved)."""
    try:
        options = load_merged_options(option_path).get('network_g')
    except (OSError, ValueError) as error:
        raise InferenceError(f'cannot read option file {option_path}: {error}') from error
    if not isinstance(options, dict):
        raise InferenceError(f'{option_path} has no network_g section.')
    return options


def resolve_network_options(network, scale=None) -> dict:
    """A copy of ``network`` with ``scale`` applied, checked to name a registered type."""
    options = dict(network)
    if 'type' not in options:
        raise InferenceError(f'network_g {options} has no type (e.g. "SFMNet").')
    architecture(options)  # an unknown type: our error rather than BasicSR's KeyError
    if scale is not None:
        apply_scale(options, scale)
    return options
