"""A network's options read off a checkpoint: stored beside its weights, or inferred from its keys and shapes."""
from sfmnet_plugin.checkpoints.common import format_keys


def stored_network_options(checkpoint, network='network_g'):
    """The ``network`` options a checkpoint carries (the plugin saves them beside ``params``), or None.

    :mod:`sfmnet_plugin.checkpoints.io` reads them from a ``.pth``'s dict or a ``.safetensors`` header alike.
    """
    options = checkpoint.get(network) if isinstance(checkpoint, dict) else None
    return dict(options) if isinstance(options, dict) and 'type' in options else None


def sfmnet_options_of(state_dict) -> dict:
    """SFMNet options read off a state dict's key names and shapes (enough to name the options that differ)."""
    def indices(prefix):
        return sorted({int(key[len(prefix):].split('.')[0]) for key in state_dict if key.startswith(prefix)})

    head = state_dict['spatial_branch.head.conv.weight']
    temperatures = [t for key, t in state_dict.items() if key.endswith('.cross_attention.temperature')]
    return {
        'num_feat': head.shape[0],
        'num_in_ch': head.shape[1],
        'num_levels': len(indices('spatial_branch.downsamplers.')),
        'num_resblocks': len(indices('spatial_branch.encoder_blocks.0.resblocks.')),
        'num_heads': temperatures[0].shape[0] if temperatures else None,
        'keep_unused_attention': any('.unused_attention.' in key for key in state_dict),
        'fusion_positions': indices('interactions.'),
    }


def weights_mismatch(network_state_dict, state_dict):
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
