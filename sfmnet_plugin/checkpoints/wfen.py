"""Official WFEN checkpoints (PRIS-CV/WFEN): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.wfen_arch.WFEN` uses the official parameter names (listed in
``tests/data/wfen_official_keys.txt``), so converting is checking: the options are read off the shapes (image
channels and ``min_ch`` from ``first_conv``, ``res_depth`` from the number of ``Transformer.<i>`` blocks), the network
is built with them on the meta device, and every key and shape must match it. The official training saves
``netG.module.state_dict()`` (no ``module.`` prefix; one is accepted too). The fixed Haar filters (``*.haar_weights``)
are part of the state dict and must hold the official values: the network computes its wavelet transforms with them.

Released network (``docs/fidelity.md`` Part W): WFEN x8 (``wfen_best.pth``, 6,795,879 parameters).
"""
import re

import torch

from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.archs.wfen_blocks import haar_filters
from sfmnet_plugin.checkpoints.conversion import CheckpointConversionError, recognise_same_names

PUBLISHED_NETWORKS = {'WFEN': {'type': 'WFEN', 'upscale': 8}}
SIGNATURE_KEYS = ('first_conv.weight', 'HaarDownsample1.HaarWavelet.haar_weights',
                  'Transformer0.modules_att.att_0.temperature', 'HaarFeatureFusion1.channel_tranformation.0.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the WFEN whose (``module.``-free) state dict this is."""
    first = state_dict['first_conv.weight']
    return {'type': 'WFEN', 'upscale': 8, 'in_channels': first.shape[1], 'min_ch': first.shape[0],
            'res_depth': 1 + len({match.group(1) for key in state_dict
                                  if (match := re.match(r'Transformer\.(\d+)\.', key))})}


def check_haar_filters(state_dict, name) -> None:
    """Raise :class:`CheckpointConversionError` unless every ``*.haar_weights`` holds the fixed Haar filters."""
    for key, tensor in state_dict.items():
        if key.endswith('haar_weights') and not torch.equal(tensor.cpu().float(),
                                                            haar_filters(tensor.shape[0] // 4)):
            raise CheckpointConversionError(f'{name}: {key!r} does not hold the fixed Haar filters of the official '
                                            f'network (all +-1); this is not a WFEN checkpoint as released.')


def recognise(state_dict):
    """The WFEN whose (``module.``-free) state dict this is, or None."""
    return recognise_same_names(state_dict, SIGNATURE_KEYS, WFEN, network_options, check_values=check_haar_filters)
