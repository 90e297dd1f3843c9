"""Official SPARNet-family checkpoints (chaofengc/Face-SPARNet): recognised by their keys and checked.

The plugin's :class:`~sfmnet_plugin.archs.sparnet_arch.SPARNet`, :class:`~sfmnet_plugin.archs.sparnet_arch.SPARNetHD`
and :class:`~sfmnet_plugin.archs.patch_discriminator_arch.MultiScalePatchDiscriminator` use the official
parameter names (listed in ``tests/data/sparnet_official_keys.txt``), so converting is checking: the network's options
are read off the key names and shapes (number of FAUs, hourglass depth, mask channels, widths, norm, spectral
norm), the network is built with them on the meta device, and every key and shape must match it.

Released networks (``docs/fidelity.md`` §B3, §B7): SPARNet x8 (``SPARNet-V16-S4-epoch20.pth``, 10,518,867 parameters),
SPARNet-Light-Attn3D (5,242,211), the SPARNetHD generator (85,793,412; its EMA copy ``net_H`` has the same keys) and
the SPARNetHD multi-scale discriminator (11,750,403). A checkpoint of another configuration of these networks (one
trained with the plugin, say) is recognised as well, and named by the options that differ.
"""
import re

from sfmnet_plugin.archs.patch_discriminator_arch import MultiScalePatchDiscriminator
from sfmnet_plugin.archs.sparnet_arch import SPARNet, SPARNetHD
from sfmnet_plugin.checkpoints.conversion import (
    CheckpointConversionError,
    network_name,
    same_names_network,
    without_defaults,
)

# Published configurations: name -> network_g options (the plugin's defaults fill in the rest).
PUBLISHED_NETWORKS = {
    'SPARNet': {'type': 'SPARNet', 'upscale': 8},
    'SPARNet-Light-Attn3D': {'type': 'SPARNet', 'upscale': 8, 'res_depth': 1, 'att_name': 'spar3d'},
    'SPARNetHD generator (net_G, or its EMA copy net_H)': {'type': 'SPARNetHD'},
    'SPARNetHD multi-scale discriminator': {'type': 'MultiScalePatchDiscriminator'},
}
NETWORK_CLASSES = {network.__name__: network for network in (SPARNet, SPARNetHD, MultiScalePatchDiscriminator)}
HOURGLASS_DEPTH_REFERENCE = 64  # the official depth rule: depth = log2(64 / bottleneck_size) (§B3.1)


def _indices(state_dict, prefix):
    """Sorted distinct integers ``i`` of keys ``<prefix><i>.``."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    return sorted({int(match.group(1)) for key in state_dict if (match := pattern.match(key))})


def _conv_weight(state_dict, prefix):
    """The conv weight of a ConvLayer, spectral-normed (``weight_orig``) or not."""
    return state_dict.get(f'{prefix}.conv2d.weight', state_dict.get(f'{prefix}.conv2d.weight_orig'))


def _norm_type(state_dict, prefix):
    """'bn', 'in' or 'none' from the norm tensors of the ConvLayers under ``prefix``."""
    norm_keys = [key for key in state_dict if key.startswith(prefix) and '.norm.norm.' in key]
    if any(key.endswith('running_mean') for key in norm_keys):
        return 'bn'
    return 'in' if norm_keys else 'none'


def _relu_type(state_dict):
    """'prelu' leaves per-channel weights (``...act.weight``); the parameter-free activations cannot be told apart."""
    return 'prelu' if any(key.endswith(('.act.weight', '.preact_func.1.weight')) for key in state_dict) else 'leakyrelu'


def _is_generator(state_dict):
    return all(_conv_weight(state_dict, prefix) is not None for prefix in ('encoder.0', 'encoder.1.conv1', 'out_conv'))


def _is_discriminator(state_dict):
    return _conv_weight(state_dict, 'D_pool.0.model.0') is not None


def generator_options(state_dict) -> dict:
    """``network_g`` options of the SPARNet-family generator whose (``module.``-free) state dict this is."""
    spectral_norm = 'encoder.0.conv2d.weight_orig' in state_dict
    down_steps = len(_indices(state_dict, 'encoder.')) - 1
    up_steps = len(_indices(state_dict, 'decoder.'))
    num_body = len(_indices(state_dict, 'res_layers.'))
    if down_steps < 1 or up_steps < 1:
        raise CheckpointConversionError('Not a SPARNet-family generator state dict: it needs encoder.1 and '
                                        'decoder.0 (the first down- and up-sampling FAUs).')
    base_ch = _conv_weight(state_dict, 'encoder.0').shape[0]
    widths = [weight.shape[0] for key, weight in state_dict.items() if re.fullmatch(
        r'(encoder|res_layers|decoder)\.\d+\.conv1\.conv2d\.weight(_orig)?', key)]
    max_ch = max(widths)
    # base_ch = clip(max_ch // (down_steps + 1)); min_ch 32 (official) gives it unless it was clipped from below
    min_ch = min(32, base_ch) if base_ch == max_ch // (down_steps + 1) else base_ch
    masks = [weight for key, weight in state_dict.items()
             if re.fullmatch(r'.*\.att_func\.out_block\.0\.conv2d\.weight(_orig)?', key)]
    hourglass_depth = len({match.group(1) for key in state_dict
                           if (match := re.match(r'encoder\.1\.att_func\.(b1_\d+)\.', key))})
    min_feat_size = 32 if spectral_norm else 16  # SPARNetHD's min_feat_size: 32 (§B7); SPARNet's: 16
    options = {
        'type': 'SPARNetHD' if spectral_norm else 'SPARNet',
        'min_ch': min_ch, 'max_ch': max_ch,
        'in_size': min_feat_size * 2 ** down_steps, 'out_size': min_feat_size * 2 ** up_steps,
        'min_feat_size': min_feat_size,
        'res_depth': num_body + down_steps - 3,
        'relu_type': _relu_type(state_dict),
        'norm_type': _norm_type(state_dict, 'encoder.1.'),
        'att_name': 'spar3d' if masks and masks[0].shape[0] > 1 else 'spar',  # 1 mask channel, or one per channel
        'bottleneck_size': HOURGLASS_DEPTH_REFERENCE // 2 ** hourglass_depth,  # encoder.1 has the deepest hourglass
        'spectral_norm': spectral_norm,
    }
    if not spectral_norm:
        options['upscale'] = 8  # the released SPARNet is x8: 16x16 LR faces in
    return options


def discriminator_options(state_dict) -> dict:
    """``network_g``-style options of the multi-scale patch discriminator whose state dict this is."""
    first = _conv_weight(state_dict, 'D_pool.0.model.0')
    layers = [_conv_weight(state_dict, f'D_pool.0.model.{i}') for i in _indices(state_dict, 'D_pool.0.model.')]
    widths = [weight.shape[0] for weight in layers if weight is not None]  # a broken layer is reported by the check
    return {
        'type': 'MultiScalePatchDiscriminator',
        'in_ch': first.shape[1], 'base_ch': first.shape[0], 'max_ch': max(widths),
        'n_layers': len(layers) - 1,
        'norm_type': _norm_type(state_dict, 'D_pool.0.model.1.'),
        'num_D': len(_indices(state_dict, 'D_pool.')),
        'spectral_norm': 'D_pool.0.model.0.conv2d.weight_orig' in state_dict,
    }


def _name(options) -> str:
    """The published name of these options (constructor defaults left out), or the class and the options."""
    for name, published in PUBLISHED_NETWORKS.items():
        if options == published:
            return name
    return network_name(options['type'], options)


def recognise(state_dict):
    """The SPARNet-family network whose (``module.``-free) state dict this is, or None.

    The plugin's names are the official ones, so nothing is renamed (``module.`` prefixes are removed before).
    """
    if _is_generator(state_dict):
        options = generator_options(state_dict)
    elif _is_discriminator(state_dict):
        options = discriminator_options(state_dict)
    else:
        return None
    network = NETWORK_CLASSES[options['type']]
    options = without_defaults(options, network)
    return same_names_network(network, options, _name(options))
