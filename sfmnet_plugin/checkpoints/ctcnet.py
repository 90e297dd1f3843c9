"""Official CTCNet checkpoints (wsxuzixiang/CTCNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.ctcnet_arch.CTCNet` keeps the official parameter names and order (listed in
``tests/data/ctcnet_official_keys.txt``), the never-called modules included (``down_input``, ``up_input``, ``embed``,
the twelve ``scale*_*``, and ``att``, ``STL64``, ``STL128``, ``conv1``, ``conv2``, ``weight1`` inside the blocks), so
an official generator state dict (saved from the DataParallel's module by the official ``save_networks``; with a
``module.`` prefix when saved from the wrapper) loads strictly: converting is checking every key and shape against
the network, which has no options to read off.
"""
from functools import partial

from sfmnet_plugin.archs.ctcnet_arch import CTCNet
from sfmnet_plugin.checkpoints.common import OfficialNetwork, check_names_and_shapes, expected_shapes

NAME = 'CTCNet'
NETWORK_OPTIONS = {'type': 'CTCNet', 'upscale': 8}  # the official network is x8 (16x16 LR faces)
# Names no other known network has: the 352-channel fusion conv and the first stage's input projection.
_SIGNATURE = ('tail352_128.weight', 'res_layers_down1_pre.att_func._64.weight')


def convert_state_dict(state_dict) -> dict:
    """Check every key and shape of an official (``module.``-free) CTCNet state dict; return it unchanged."""
    check_names_and_shapes(state_dict, expected_shapes(CTCNet), NAME)
    return dict(state_dict)


def recognise(state_dict):
    """:class:`OfficialNetwork` for a (``module.``-free) CTCNet state dict, or None."""
    if not all(key in state_dict for key in _SIGNATURE):
        return None
    return OfficialNetwork(NAME, dict(NETWORK_OPTIONS), partial(convert_state_dict))
