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
from functools import partial

from sfmnet_plugin.archs.sisn_arch import SISN
from sfmnet_plugin.checkpoints.conversion import (
    CheckpointConversionError,
    OfficialNetwork,
    check_names_and_shapes,
    expected_shapes,
)

# The official make_template sizes: 10 groups of 10 blocks, 64 channels; the released weights are x4.
OFFICIAL_SIZES = {'num_groups': 10, 'num_blocks': 10, 'num_feat': 64}
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
    sizes = {'num_groups': _count(state_dict, r'body\.(\d+)\.IA\.conv1\.weight'),
             'num_blocks': _count(state_dict, r'body\.0\.body\.(\d+)\.conv1\.weight'),
             'num_feat': head.shape[0]}
    return {'type': 'SISN', 'upscale': scale,
            **{key: value for key, value in sizes.items() if value != OFFICIAL_SIZES[key]}}


def convert_state_dict(state_dict, options, name) -> dict:
    """Check every key and shape against the SISN built from ``options``; return the state dict unchanged."""
    options = dict(options)
    options.pop('type')
    check_names_and_shapes(state_dict, expected_shapes(partial(SISN, **options)), name)
    return dict(state_dict)


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) SISN state dict, or None."""
    if not all(key in state_dict for key in _SIGNATURE):
        return None
    options = network_options(state_dict)
    extra = ', '.join(f'{key}={value}' for key, value in options.items() if key not in ('type', 'upscale'))
    name = f"SISN x{options['upscale']}" + (f' ({extra})' if extra else '')
    return OfficialNetwork(name, options, partial(convert_state_dict, options=options, name=name))
