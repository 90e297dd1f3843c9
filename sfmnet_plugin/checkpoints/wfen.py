"""Official WFEN checkpoints (PRIS-CV/WFEN): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.wfen_arch.WFEN` uses the official parameter names (listed in
``tests/data/wfen_official_keys.txt``), so converting is checking: the options are read off the shapes (image
channels and ``min_ch`` from ``first_conv``, ``res_depth`` from the number of ``Transformer.<i>`` blocks), the network
is built with them on the meta device, and every key and shape must match it. The official training saves
``netG.module.state_dict()`` (no ``module.`` prefix; one is accepted too). The fixed Haar filters (``*.haar_weights``)
are part of the state dict and must hold the official values: the network computes its wavelet transforms with them.

Released network (``docs/fidelity.md`` Part W): WFEN x8 (``wfen_best.pth``, 6,795,879 parameters).
"""
import inspect
import re
from functools import partial

import torch

from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.archs.wfen_blocks import haar_filters
from sfmnet_plugin.checkpoints.conversion import (
    CheckpointConversionError,
    OfficialNetwork,
    check_names_and_shapes,
    expected_shapes,
)

PUBLISHED_NETWORKS = {'WFEN': {'type': 'WFEN', 'upscale': 8}}
SIGNATURE_KEYS = ('first_conv.weight', 'HaarDownsample1.HaarWavelet.haar_weights',
                  'Transformer0.modules_att.att_0.temperature', 'HaarFeatureFusion1.channel_tranformation.0.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the WFEN whose (``module.``-free) state dict this is (constructor defaults left out)."""
    first = state_dict['first_conv.weight']
    options = {'type': 'WFEN', 'upscale': 8, 'in_channels': first.shape[1], 'min_ch': first.shape[0],
               'res_depth': 1 + len({match.group(1) for key in state_dict
                                     if (match := re.match(r'Transformer\.(\d+)\.', key))})}
    defaults = {name: parameter.default for name, parameter in inspect.signature(WFEN).parameters.items()}
    return {key: value for key, value in options.items() if key in ('type', 'upscale') or defaults[key] != value}


def _name(options) -> str:
    extra = ', '.join(f'{key}={value!r}' for key, value in options.items() if key not in ('type', 'upscale'))
    return f'WFEN ({extra})' if extra else 'WFEN'


def convert_state_dict(state_dict, options, name) -> dict:
    """Check every key and shape of ``state_dict`` and the Haar filters' values; return it unchanged."""
    options = dict(options)
    options.pop('type')
    check_names_and_shapes(state_dict, expected_shapes(partial(WFEN, **options)), name)
    for key, tensor in state_dict.items():
        if key.endswith('haar_weights') and not torch.equal(tensor.cpu().float(),
                                                            haar_filters(tensor.shape[0] // 4)):
            raise CheckpointConversionError(f'{name}: {key!r} does not hold the fixed Haar filters of the official '
                                            f'network (all +-1); this is not a WFEN checkpoint as released.')
    return dict(state_dict)


def recognise(state_dict):
    """The WFEN whose (``module.``-free) state dict this is, or None."""
    if not all(key in state_dict for key in SIGNATURE_KEYS):
        return None
    options = network_options(state_dict)
    name = _name(options)
    return OfficialNetwork(name, options, partial(convert_state_dict, options=options, name=name))
