"""Official DIC checkpoints (Maclory/Deep-Iterative-Collaboration): recognised by their keys and checked.

The official training code saves a dict with the network's state dict under ``state_dict`` beside ``step``,
``epoch``, ``optimizer``, ``best_pred``, ``best_step`` and ``records`` (``SRLandmarkSolver.save_checkpoint``);
:func:`~sfmnet_plugin.checkpoints.conversion.unwrap_checkpoint` takes the state dict out. The plugin's
:class:`~sfmnet_plugin.archs.dic_arch.DIC` uses the official parameter names (``tests/data/dic_official_keys.txt``),
so converting is checking: the options are read off the shapes (widths, projection groups, fusion blocks,
keypoints), the network is built on the meta device and every key and shape must match.

The released DIC (CelebA and Helen models, 21,803,849 parameters) has ``num_features`` 48, ``num_groups`` 6,
``hg_num_feature`` 256, 68 keypoints and 7 fusion blocks; ``num_steps`` (4) and ``detach_attention`` leave no
trace in the weights and keep the defaults.
"""
import re
from functools import partial

from sfmnet_plugin.archs.dic_arch import DIC
from sfmnet_plugin.checkpoints.conversion import OfficialNetwork, check_names_and_shapes, expected_shapes

PUBLISHED_NETWORKS = {'DIC': {'type': 'DIC', 'upscale': 8}}
_DEFAULTS = {'num_features': 48, 'num_groups': 6, 'hg_num_feature': 256, 'hg_num_keypoints': 68,
             'num_fusion_block': 7, 'in_channels': 3, 'out_channels': 3}
_MARKERS = ('conv_in.0.weight', 'first_block.compress_in.0.weight', 'block.fusion_block.conv_in.0.weight',
            'HG.compress_in.weight', 'conv_out.0.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the DIC whose (``module.``-free) state dict this is."""
    num_features = state_dict['first_block.compress_in.0.weight'].shape[0]
    fusion_blocks = {int(m.group(1)) for key in state_dict
                     if (m := re.match(r'block\.fusion_block\.resnet\.(\d+)\.', key))}
    options = {
        'num_features': num_features,
        'num_groups': len({int(m.group(1)) for key in state_dict
                           if (m := re.match(r'first_block\.upBlocks\.(\d+)\.', key))}),
        'hg_num_feature': state_dict['HG.compress_in.weight'].shape[0] // 2,
        'hg_num_keypoints': state_dict['HG.hg_conv_out.2.weight'].shape[0] if 'HG.hg_conv_out.2.weight' in state_dict
        else _DEFAULTS['hg_num_keypoints'],
        'num_fusion_block': len(fusion_blocks),
        'in_channels': state_dict['conv_in.0.weight'].shape[1],
        'out_channels': state_dict['conv_out.0.weight'].shape[0],
    }
    changed = {key: value for key, value in options.items() if value != _DEFAULTS[key]}
    return {'type': 'DIC', 'upscale': 8, **changed}


def _name(options) -> str:
    extra = ', '.join(f'{key}={value!r}' for key, value in options.items() if key not in ('type', 'upscale'))
    return f'DIC ({extra})' if extra else 'DIC'


def convert_state_dict(state_dict, options, name) -> dict:
    """Check every key and shape of ``state_dict`` against the DIC built from ``options``; return it unchanged."""
    options = dict(options)
    options.pop('type')
    check_names_and_shapes(state_dict, expected_shapes(partial(DIC, **options)), name)
    return dict(state_dict)


def recognise(state_dict):
    """The DIC whose (``module.``-free) state dict this is, or None."""
    if not all(key in state_dict for key in _MARKERS):
        return None
    options = network_options(state_dict)
    name = _name(options)
    return OfficialNetwork(name, options, partial(convert_state_dict, options=options, name=name))
