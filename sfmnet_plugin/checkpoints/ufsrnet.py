"""Official UFSRNet checkpoints (Aichiniuroumian/UFSRNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.ufsrnet_arch.UFSRNet` keeps the official parameter names (listed in
``tests/data/ufsrnet_official_keys.txt``), the never-called ``conv0``/``gamma``/``d_l2_Block2`` included, so the
official ``pretrain_models/latest_net_G.pth`` (the generator's state dict, saved from the DataParallel's module) loads
strictly: converting is checking every key and shape against the network. The official network has no options;
a plugin-trained one of another width (``num_feat``, read off the head conv) is recognised too.
"""
from sfmnet_plugin.archs.ufsrnet_arch import UFSRNet
from sfmnet_plugin.checkpoints.conversion import recognise_same_names

NAME = 'UFSRNet'
NETWORK_OPTIONS = {'type': 'UFSRNet', 'upscale': 8}  # the official network is x8 (16x16 LR faces)
# Names no other known network has (the gates of the wavelet encoder and the bottleneck block), and the head conv
# the width is read off.
_SIGNATURE = ('zishiying1.0.weight', 'i_l2_Block2.c1_d.weight', 'head.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the UFSRNet whose (``module.``-free) state dict this is (official width: 32)."""
    return {**NETWORK_OPTIONS, 'num_feat': state_dict['head.weight'].shape[0]}


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) UFSRNet state dict, or None."""
    return recognise_same_names(state_dict, _SIGNATURE, UFSRNet, network_options)
