"""Official SFMNet checkpoints (wcy-cs/SFMNet) -> the plugin's parameter names.

The plugin re-implements the official ``TwoBranch`` generator and the two LightCNN-9 discriminators with the same
tensors under readable names, so a conversion is a pure renaming plus checks:

* every official key must be known and present, and every tensor must have the plugin's shape;
* official ``conv_fuse.<i>.fre`` processes the *spatial* feature and ``conv_fuse.<i>.spa`` the frequency
  feature (docs/fidelity.md §A10 item 2); they become ``interactions.<i>.spatial_conv`` and
  ``interactions.<i>.frequency_conv``;
* official ``spa_att`` (never called) becomes ``unused_attention``, or is dropped with ``keep_unused_attention=False``.
"""
import re
from functools import partial

from sfmnet_plugin.archs.lightcnn_discriminator_arch import SFMNetFrequencyDiscriminator, SFMNetSpatialDiscriminator
from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.checkpoints.conversion import (
    CheckpointConversionError,
    OfficialNetwork,
    check_names_and_shapes,
    expected_shapes,
    strip_module_prefix,
)

# Official generator defaults (option.py): 3 U-Net levels, 2 ResBlocks per ResidualGroup, 14 fusion blocks.
_NUM_LEVELS = 3
_NUM_RESBLOCKS = 2

# Per block type: official parameter name inside the block -> plugin name inside the block.
_CONV_PRELU = {'layers.weight': 'conv.weight', 'act.weight': 'act.weight'}
_DOWNSAMPLE = {'layers.0.layers.weight': 'conv.weight', 'layers.2.layers.weight': 'channel_reduce.weight'}
_UPSAMPLE = {'0.weight': 'channel_expand.weight', '0.bias': 'channel_expand.bias', '2.weight': 'act.weight'}
_FFT_BLOCK = {
    f'{official}.{tensor}': f'{plugin}.{tensor}'
    for official, plugin in [('fpre', 'in_conv'), ('amp_fuse.0', 'amplitude_refine.0'),
                             ('amp_fuse.2', 'amplitude_refine.2'), ('pha_fuse.0', 'phase_refine.0'),
                             ('pha_fuse.2', 'phase_refine.2'), ('post', 'out_conv')]
    for tensor in ('weight', 'bias')
}
_RESIDUAL_GROUP = {
    **{f'body.{i}.layers.{j}.layers.weight': f'resblocks.{i}.conv{j + 1}.weight'
       for i in range(_NUM_RESBLOCKS) for j in range(2)},
    f'body.{_NUM_RESBLOCKS}.layers.weight': 'out_conv.conv.weight',
    f'body.{_NUM_RESBLOCKS}.act.weight': 'out_conv.act.weight',
    're_scale.scale': 'skip_scale',
}
_ATTENTION = {'temperature': 'temperature', 'q.weight': 'query.weight', 'q_dwconv.weight': 'query_dwconv.weight',
              'kv.weight': 'key_value.weight', 'kv_dwconv.weight': 'key_value_dwconv.weight',
              'project_out.weight': 'project_out.weight'}
_INTERACTION = {
    # official names are swapped: 'fre' convolves the spatial feature, 'spa' the frequency feature.
    'fre.weight': 'spatial_conv.weight', 'fre.bias': 'spatial_conv.bias',
    'spa.weight': 'frequency_conv.weight', 'spa.bias': 'frequency_conv.bias',
    **{f'fre_att.{k}': f'cross_attention.{v}' for k, v in _ATTENTION.items()},
    **{f'spa_att.{k}': f'unused_attention.{v}' for k, v in _ATTENTION.items()},
    **{f'fuse.{i}.{tensor}': f'gate.{i}.{tensor}' for i in range(2) for tensor in ('weight', 'bias')},
}


def _level_modules(s, b, official, plugin, sampler_block, stage_block):
    """The modules of every encoder (``official='down'``, ``plugin='encoder'``) or decoder (``'up'``, ``'decoder'``)
    level: official ``<official><k><s>.0`` / ``.1`` / ``_mo.0`` are the plugin's sampler, block and refine block."""
    samplers = {'down': 'downsamplers', 'up': 'upsamplers'}[official]
    for level in range(_NUM_LEVELS):
        k = level + 1
        yield f'{official}{k}{s}.0', f'{b}.{samplers}.{level}', sampler_block
        yield f'{official}{k}{s}.1', f'{b}.{plugin}_blocks.{level}', stage_block
        yield f'{official}{k}{s}_mo.0', f'{b}.{plugin}_refine_blocks.{level}', stage_block


def _branch_modules(official_suffix, plugin_branch, stage_block):
    """(official module prefix, plugin module prefix, block mapping) for every module of one U-Net branch."""
    s, b = official_suffix, plugin_branch
    yield f'head{s}.0', f'{b}.head', _CONV_PRELU
    yield from _level_modules(s, b, 'down', 'encoder', _DOWNSAMPLE, stage_block)
    yield f'neck{s}.0', f'{b}.neck_block', stage_block
    yield f'neck{s}_mo.0', f'{b}.neck_refine_block', stage_block
    yield from _level_modules(s, b, 'up', 'decoder', _UPSAMPLE, stage_block)
    yield f'tail{s}.0', f'{b}.tail', _CONV_PRELU


def official_to_plugin_key_map() -> dict:
    """Every official ``TwoBranch`` key (default options, 584 tensors) -> the plugin's :class:`SFMNet` key."""
    modules = [
        *_branch_modules('_fre', 'frequency_branch', _FFT_BLOCK),
        *_branch_modules('', 'spatial_branch', _RESIDUAL_GROUP),
        *[(f'conv_fuse.{i}', f'interactions.{i}', _INTERACTION) for i in range(4 * _NUM_LEVELS + 2)],
    ]
    return {f'{official}.{name}': f'{plugin}.{renamed}'
            for official, plugin, block in modules for name, renamed in block.items()}


def _renamed_and_checked(official_sd, key_map, plugin_shapes, what):
    """Check ``official_sd`` against the official names of ``plugin_shapes``, then rename it with ``key_map``."""
    check_names_and_shapes(official_sd, {key: plugin_shapes[plugin] for key, plugin in key_map.items()}, what)
    return {key_map[key]: tensor for key, tensor in official_sd.items()}


def convert_official_state_dict(official_sd, keep_unused_attention: bool = True) -> dict:
    """Official ``TwoBranch`` state dict -> state dict of ``SFMNet(keep_unused_attention=...)`` (other args default).

    ``module.`` prefixes are removed first. Raises :class:`CheckpointConversionError` naming the first mismatch
    and listing missing, unexpected or mis-shaped keys. The tensors are not copied.
    """
    official_sd = strip_module_prefix(official_sd)
    shapes = expected_shapes(partial(SFMNet, keep_unused_attention=True))
    plugin_sd = _renamed_and_checked(official_sd, official_to_plugin_key_map(), shapes, 'SFMNet generator')
    if not keep_unused_attention:
        plugin_sd = {key: t for key, t in plugin_sd.items() if '.unused_attention.' not in key}
    return plugin_sd


def is_official_state_dict(state_dict) -> bool:
    """True if ``state_dict`` (``module.`` prefixes allowed) uses the official SFMNet generator's key names."""
    return 'head_fre.0.layers.weight' in strip_module_prefix(state_dict)


# Official LightCNN-9 discriminators call the conv/linear of an MFM layer 'filter' and a group's 1x1 MFM
# 'conv_a'. Rules from plugin names to official ones (the first match applies; the last Linear is unchanged).
_DISCRIMINATOR_PLUGIN_TO_OFFICIAL = [
    (re.compile(r'^features\.0\.conv\.'), 'features.0.filter.'),
    (re.compile(r'^features\.(\d+)\.conv1x1\.conv\.'), r'features.\1.conv_a.filter.'),
    (re.compile(r'^features\.(\d+)\.conv3x3\.conv\.'), r'features.\1.conv.filter.'),
    (re.compile(r'^classifier\.0\.linear\.'), 'classifier.0.filter.'),
]


def _official_discriminator_key(plugin_key):
    for pattern, replacement in _DISCRIMINATOR_PLUGIN_TO_OFFICIAL:
        if pattern.match(plugin_key):
            return pattern.sub(replacement, plugin_key, count=1)
    return plugin_key


def is_official_discriminator_state_dict(state_dict) -> bool:
    """True for an official ``network_9layers`` / ``network_9layers_fft`` state dict."""
    return 'features.0.filter.weight' in strip_module_prefix(state_dict)


def _official_discriminator_class(official_sd):
    """3 input channels: ``network_9layers`` (the image); 6: ``network_9layers_fft`` (amplitude and phase)."""
    first_layer = official_sd.get('features.0.filter.weight')
    if first_layer is None or first_layer.ndim != 4 or first_layer.shape[1] not in (3, 6):
        raise CheckpointConversionError('Not an official SFMNet discriminator state dict: expected '
                                        "'features.0.filter.weight' with 3 (image) or 6 (spectrum) input channels.")
    return SFMNetSpatialDiscriminator if first_layer.shape[1] == 3 else SFMNetFrequencyDiscriminator


def convert_official_discriminator_state_dict(official_sd) -> dict:
    """Official LightCNN-9 discriminator state dict -> the matching plugin discriminator's state dict.

    The input layer tells the kind apart: 3 input channels is ``network_9layers`` (->
    :class:`SFMNetSpatialDiscriminator`), 6 is ``network_9layers_fft`` (-> :class:`SFMNetFrequencyDiscriminator`);
    both with ``input_size=128``. Raises :class:`CheckpointConversionError` like the generator converter.
    """
    official_sd = strip_module_prefix(official_sd)
    network = _official_discriminator_class(official_sd)
    shapes = expected_shapes(network)
    key_map = {_official_discriminator_key(key): key for key in shapes}
    return _renamed_and_checked(official_sd, key_map, shapes, f'{network.__name__} (official)')


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


def recognise(state_dict, keep_unused_attention: bool = True):
    """The official SFMNet network whose key names ``state_dict`` (no ``module.`` prefix) uses, or None."""
    if is_official_state_dict(state_dict):
        options = {'type': 'SFMNet', 'upscale': 8, 'keep_unused_attention': keep_unused_attention}
        return OfficialNetwork('SFMNet generator', options,
                               partial(convert_official_state_dict, keep_unused_attention=keep_unused_attention))
    if is_official_discriminator_state_dict(state_dict):
        network = _official_discriminator_class(state_dict)
        kind = 'spatial' if network is SFMNetSpatialDiscriminator else 'frequency'
        return OfficialNetwork(f'SFMNet {kind} discriminator (LightCNN-9)', {'type': network.__name__},
                               convert_official_discriminator_state_dict)
    return None
