"""Official CTCNet checkpoints (wsxuzixiang/CTCNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.ctcnet_arch.CTCNet` keeps the official parameter names and order (listed in
``tests/data/ctcnet_official_keys.txt``), the never-called modules included (``down_input``, ``up_input``, ``embed``,
the twelve ``scale*_*``, and ``att``, ``STL64``, ``STL128``, ``conv1``, ``conv2``, ``weight1`` inside the blocks), so
an official generator state dict (saved from the DataParallel's module by the official ``save_networks``; with a
``module.`` prefix when saved from the wrapper) loads strictly: converting is checking every key and shape against
the network. The one structural option, the plugin's ``num_feat`` (official 32), is read off ``head.weight``, so a
narrower CTCNet trained with the plugin (the demo's) is recognised too.
"""
from sfmnet_plugin.archs.ctcnet_arch import CTCNet
from sfmnet_plugin.checkpoints.conversion import recognise_same_names

NAME = 'CTCNet'
NETWORK_OPTIONS = {'type': 'CTCNet', 'upscale': 8}  # the official network is x8 (16x16 LR faces)
# Names no other known network has: the 352-channel fusion conv and the first stage's input projection.
_SIGNATURE = ('tail352_128.weight', 'res_layers_down1_pre.att_func._64.weight')


def network_options(state_dict) -> dict:
    """``network_g`` options of the CTCNet whose (``module.``-free) state dict this is (official width: 32)."""
    return {**NETWORK_OPTIONS, 'num_feat': state_dict['head.weight'].shape[0]}


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) CTCNet state dict, or None."""
    return recognise_same_names(state_dict, _SIGNATURE, CTCNet, network_options)
