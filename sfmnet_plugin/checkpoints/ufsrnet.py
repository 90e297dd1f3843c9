"""Official UFSRNet checkpoints (Aichiniuroumian/UFSRNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.ufsrnet_arch.UFSRNet` keeps the official parameter names (listed in
``tests/data/ufsrnet_official_keys.txt``), the never-called ``conv0``/``gamma``/``d_l2_Block2`` included, so the
official ``pretrain_models/latest_net_G.pth`` (the generator's state dict, saved from the DataParallel's module) loads
strictly: converting is checking every key and shape against the network. The official network has no options;
a plugin-trained one of another width (``num_feat``, read off the head conv) is recognised too.
"""
from functools import partial

from sfmnet_plugin.archs.ufsrnet_arch import NUM_FEAT, UFSRNet
from sfmnet_plugin.checkpoints.conversion import OfficialNetwork, check_names_and_shapes, expected_shapes

NAME = 'UFSRNet'
NETWORK_OPTIONS = {'type': 'UFSRNet', 'upscale': 8}  # the official network is x8 (16x16 LR faces)
# Names no other known network has: the gates of the wavelet encoder and the bottleneck block.
_SIGNATURE = ('zishiying1.0.weight', 'i_l2_Block2.c1_d.weight')


def convert_state_dict(state_dict, options, name) -> dict:
    """Check every key and shape of a (``module.``-free) UFSRNet state dict against the network of ``options``;
    return it unchanged."""
    options = dict(options)
    options.pop('type')
    check_names_and_shapes(state_dict, expected_shapes(partial(UFSRNet, **options)), name)
    return dict(state_dict)


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) UFSRNet state dict, or None."""
    if not all(key in state_dict for key in _SIGNATURE) or 'head.weight' not in state_dict:
        return None
    options, name = dict(NETWORK_OPTIONS), NAME
    num_feat = state_dict['head.weight'].shape[0]
    if num_feat != NUM_FEAT:
        options['num_feat'] = num_feat
        name = f'{NAME} (num_feat={num_feat})'
    return OfficialNetwork(name, options, partial(convert_state_dict, options=options, name=name))
