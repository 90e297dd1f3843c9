"""Official SISN checkpoints (mdswyz/SISN-Face-Hallucination): recognised by their keys, checked, prefixes removed.

The official solver wraps ``Net`` in ``nn.DataParallel`` and saves that wrapper's state dict (``<step>.pt``), so every
key starts with ``module.``; :func:`~sfmnet_plugin.checkpoints.recognise_official_checkpoint` removes the prefix before
it gets here. Past it the names are the plugin's (:class:`~sfmnet_plugin.archs.sisn_arch.SISN` keeps the official
ones, listed in ``tests/data/sisn_official_keys.txt``), so converting is checking every key and shape against the
network built with the options read off the shapes: the scale (the head conv takes ``3 scale^2`` channels), the width,
the number of groups and of blocks per group.
"""
import math
import re

from sfmnet_plugin.archs.sisn_arch import SISN
from sfmnet_plugin.checkpoints.conversion import CheckpointConversionError, recognise_same_names

# The released weights are x4 and x8; SISN's defaults are the official make_template sizes (10 groups of 10 blocks,
# 64 channels).
PUBLISHED_NETWORKS = ('SISN x4', 'SISN x8')
_SIGNATURE = ('sub_mean.weight', 'add_mean.weight', 'head.1.weight', 'body.0.IA.conv2.conv1x1_1.weight')


def _count(state_dict, pattern):
    return len({match.group(1) for key in state_dict if (match := re.fullmatch(pattern, key))})


def network_options(state_dict) -> dict:
    """``network_g`` options of the SISN whose (``module.``-free) state dict this is."""
    head = state_dict['head.1.weight']
    scale = math.isqrt(head.shape[1] // 3)
    if 3 * scale * scale != head.shape[1]:
        raise CheckpointConversionError(f'Not an official SISN state dict: head.1.weight takes {head.shape[1]} input '
                                        'channels, expected 3 x scale^2.')
    return {'type': 'SISN', 'upscale': scale,
            'num_groups': _count(state_dict, r'body\.(\d+)\.IA\.conv1\.weight'),
            'num_blocks': _count(state_dict, r'body\.0\.body\.(\d+)\.conv1\.weight'),
            'num_feat': head.shape[0]}


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) SISN state dict, or None."""
    return recognise_same_names(state_dict, _SIGNATURE, SISN, network_options,
                                base_name=lambda options: f"SISN x{options['upscale']}")
