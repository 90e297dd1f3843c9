"""Official UFSRNet checkpoints (Aichiniuroumian/UFSRNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.ufsrnet_arch.UFSRNet` keeps the official parameter names (listed in
``tests/data/ufsrnet_official_keys.txt``), the never-called ``conv0``/``gamma``/``d_l2_Block2`` included, so the
official ``pretrain_models/latest_net_G.pth`` (the generator's state dict, saved from the DataParallel's module) loads
strictly: converting is checking every key and shape against the network, which has no options to read off.
"""
from functools import partial

from sfmnet_plugin.archs.ufsrnet_arch import UFSRNet
from sfmnet_plugin.checkpoints.common import OfficialNetwork, check_names_and_shapes, expected_shapes

NAME = 'UFSRNet'
NETWORK_OPTIONS = {'type': 'UFSRNet', 'upscale': 8}  # the official network is x8 (16x16 LR faces)
# Names no other known network has: the gates of the wavelet encoder and the bottleneck block.
_SIGNATURE = ('zishiying1.0.weight', 'i_l2_Block2.c1_d.weight')


def convert_state_dict(state_dict) -> dict:
    """Check every key and shape of an official (``module.``-free) UFSRNet state dict; return it unchanged."""
    check_names_and_shapes(state_dict, expected_shapes(UFSRNet), NAME)
    return dict(state_dict)


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) UFSRNet state dict, or None."""
    if not all(key in state_dict for key in _SIGNATURE):
        return None
    return OfficialNetwork(NAME, dict(NETWORK_OPTIONS), partial(convert_state_dict))
