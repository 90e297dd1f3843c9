"""Why a state dict does not load into a network: the short message of ``sfmnet-infer`` and of the pre-flight."""
from collections.abc import Mapping
from typing import Any

from sfmnet_plugin.checkpoints.conversion import format_keys
from sfmnet_plugin.checkpoints.sfmnet import sfmnet_options_of


def weights_mismatch(network_state_dict: Mapping[str, Any], state_dict: Mapping[str, Any]) -> list[str]:
    """Why ``state_dict`` does not load strictly into a network with ``network_state_dict`` (keys and shapes are
    all that is read, so a network on the meta device will do): a few lines, or [] when it fits. For two SFMNets
    the lines name the options that differ."""
    expected = {key: tuple(t.shape) for key, t in network_state_dict.items()}
    missing, unexpected = set(expected) - set(state_dict), set(state_dict) - set(expected)
    mismatched = [f'{key} {tuple(state_dict[key].shape)} vs {expected[key]}'
                  for key in sorted(set(expected) & set(state_dict)) if tuple(state_dict[key].shape) != expected[key]]
    if not (missing or unexpected or mismatched):
        return []
    lines = [format_keys(title, keys, limit=3) for title, keys in
             [('missing keys', missing), ('unexpected keys', unexpected),
              ('shape mismatches (checkpoint vs network)', mismatched)] if keys]
    sfmnet_key = 'spatial_branch.head.conv.weight'
    if sfmnet_key in state_dict and sfmnet_key in network_state_dict:  # both SFMNet: name the options that differ
        ours, theirs = sfmnet_options_of(network_state_dict), sfmnet_options_of(state_dict)
        if theirs['num_levels'] != ours['num_levels']:
            del ours['fusion_positions']  # follows from num_levels: naming it too would only add noise
        lines += [f'the checkpoint has {name} {theirs[name]} but the network has {ours[name]}'
                  for name in ours if theirs[name] != ours[name]]
    return lines
