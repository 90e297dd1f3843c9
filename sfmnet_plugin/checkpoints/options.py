"""A network's options read off a checkpoint: stored beside its weights, or inferred from its keys and shapes."""


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
