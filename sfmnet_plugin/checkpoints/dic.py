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

from sfmnet_plugin.archs.dic_arch import DIC
from sfmnet_plugin.checkpoints.conversion import recognise_same_names

PUBLISHED_NETWORKS = {'DIC': {'type': 'DIC', 'upscale': 8}}
_MARKERS = ('conv_in.0.weight', 'first_block.compress_in.0.weight', 'block.fusion_block.conv_in.0.weight',
            'HG.compress_in.weight', 'conv_out.0.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the DIC whose (``module.``-free) state dict this is (the constructor's defaults are
    the official sizes; a missing keypoint head keeps the default, and the check reports it)."""
    fusion_blocks = {int(m.group(1)) for key in state_dict
                     if (m := re.match(r'block\.fusion_block\.resnet\.(\d+)\.', key))}
    keypoints = state_dict.get('HG.hg_conv_out.2.weight')
    return {
        'type': 'DIC', 'upscale': 8,
        'num_features': state_dict['first_block.compress_in.0.weight'].shape[0],
        'num_groups': len({int(m.group(1)) for key in state_dict
                           if (m := re.match(r'first_block\.upBlocks\.(\d+)\.', key))}),
        'hg_num_feature': state_dict['HG.compress_in.weight'].shape[0] // 2,
        **({} if keypoints is None else {'hg_num_keypoints': keypoints.shape[0]}),
        'num_fusion_block': len(fusion_blocks),
        'in_channels': state_dict['conv_in.0.weight'].shape[1],
        'out_channels': state_dict['conv_out.0.weight'].shape[0],
    }


def recognise(state_dict):
    """The DIC whose (``module.``-free) state dict this is, or None."""
    return recognise_same_names(state_dict, _MARKERS, DIC, network_options)
