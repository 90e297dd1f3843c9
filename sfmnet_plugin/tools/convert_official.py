"""Convert official SFMNet checkpoints (wcy-cs/SFMNet) to the plugin's parameter names.

The plugin re-implements the official ``TwoBranch`` generator and the two LightCNN-9 discriminators with
the same tensors under readable names, so a conversion is a pure renaming plus checks:

* every official key must be known and present, and every tensor must have the plugin's shape;
* official ``conv_fuse.<i>.fre`` processes the *spatial* feature and ``conv_fuse.<i>.spa`` the frequency
  feature (spec 10.2); they become ``interactions.<i>.spatial_conv`` and ``interactions.<i>.frequency_conv``;
* official ``spa_att`` (never called) becomes ``unused_attention``, or is dropped with ``keep_unused_attention=False``.

Command line (writes BasicSR's ``{'params': state_dict}`` format, loadable with ``strict_load_g: true``)::

    sfmnet-convert-official IN.pth OUT.pth [--drop-unused-attention]

IN may be a plain state dict, one wrapped in ``{'state_dict': ...}``, and/or use DataParallel's ``module.``
prefixes. Official discriminator checkpoints (``network_9layers`` / ``network_9layers_fft``) are recognised
and converted too.
"""
import argparse
import re
import sys

import torch

from sfmnet_plugin._compat import atomic_torch_save
from sfmnet_plugin.archs.lightcnn_discriminator_arch import SFMNetFrequencyDiscriminator, SFMNetSpatialDiscriminator
from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.safe_loading import UnsafeOrInvalidFileError, load_torch_file

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


def _branch_modules(official_suffix, plugin_branch, stage_block):
    """(official module prefix, plugin module prefix, block mapping) for every module of one U-Net branch."""
    s, b = official_suffix, plugin_branch
    yield f'head{s}.0', f'{b}.head', _CONV_PRELU
    for level in range(_NUM_LEVELS):
        k = level + 1
        yield f'down{k}{s}.0', f'{b}.downsamplers.{level}', _DOWNSAMPLE
        yield f'down{k}{s}.1', f'{b}.encoder_blocks.{level}', stage_block
        yield f'down{k}{s}_mo.0', f'{b}.encoder_refine_blocks.{level}', stage_block
    yield f'neck{s}.0', f'{b}.neck_block', stage_block
    yield f'neck{s}_mo.0', f'{b}.neck_refine_block', stage_block
    for level in range(_NUM_LEVELS):
        k = level + 1
        yield f'up{k}{s}.0', f'{b}.upsamplers.{level}', _UPSAMPLE
        yield f'up{k}{s}.1', f'{b}.decoder_blocks.{level}', stage_block
        yield f'up{k}{s}_mo.0', f'{b}.decoder_refine_blocks.{level}', stage_block
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


class CheckpointConversionError(ValueError):
    """The checkpoint does not have the official layout; the message lists every offending key."""


def format_keys(title, keys, limit=20):
    keys = sorted(keys)
    shown = ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')
    return f'{title} ({len(keys)}): {shown}'


def _renamed_and_checked(official_sd, key_map, expected_shapes, what):
    """Rename ``official_sd`` with ``key_map``; raise one error listing missing, unexpected and mis-shaped keys."""
    missing = set(key_map) - set(official_sd)
    unexpected = set(official_sd) - set(key_map)
    mismatched = [f'{key} {tuple(official_sd[key].shape)} (expected {tuple(expected_shapes[key_map[key]])})'
                  for key in sorted(set(official_sd) & set(key_map))
                  if tuple(official_sd[key].shape) != tuple(expected_shapes[key_map[key]])]
    if missing or unexpected or mismatched:
        problems = [format_keys(title, keys) for title, keys in
                    [('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', mismatched)]
                    if keys]
        raise CheckpointConversionError(f'Not an official {what} state dict (default options):\n  '
                                        + '\n  '.join(problems))
    return {key_map[key]: tensor for key, tensor in official_sd.items()}


def convert_official_state_dict(official_sd, keep_unused_attention: bool = True) -> dict:
    """Official ``TwoBranch`` state dict -> state dict of ``SFMNet(keep_unused_attention=...)`` (other args default).

    ``module.`` prefixes are removed first. Raises :class:`CheckpointConversionError` listing missing,
    unexpected or mis-shaped keys. The tensors are not copied.
    """
    official_sd = strip_module_prefix(official_sd)
    with torch.device('meta'):  # shapes only, no memory and no initialisation cost
        expected_shapes = {key: t.shape for key, t in SFMNet(keep_unused_attention=True).state_dict().items()}
    plugin_sd = _renamed_and_checked(official_sd, official_to_plugin_key_map(), expected_shapes, 'SFMNet generator')
    if not keep_unused_attention:
        plugin_sd = {key: t for key, t in plugin_sd.items() if '.unused_attention.' not in key}
    return plugin_sd


def is_official_state_dict(state_dict) -> bool:
    """True if ``state_dict`` (``module.`` prefixes allowed) uses the official generator's key names."""
    return 'head_fre.0.layers.weight' in strip_module_prefix(state_dict)


def strip_module_prefix(state_dict) -> dict:
    """Remove the ``module.`` prefix that (Distributed)DataParallel adds to every key."""
    return {key[len('module.'):] if key.startswith('module.') else key: t for key, t in state_dict.items()}


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


def convert_official_discriminator_state_dict(official_sd) -> dict:
    """Official LightCNN-9 discriminator state dict -> the matching plugin discriminator's state dict.

    The input layer tells the kind apart: 3 input channels is ``network_9layers`` (->
    :class:`SFMNetSpatialDiscriminator`), 6 is ``network_9layers_fft`` (-> :class:`SFMNetFrequencyDiscriminator`);
    both with ``input_size=128``. Raises :class:`CheckpointConversionError` like the generator converter.
    """
    official_sd = strip_module_prefix(official_sd)
    first_layer = official_sd.get('features.0.filter.weight')
    if first_layer is None or first_layer.ndim != 4 or first_layer.shape[1] not in (3, 6):
        raise CheckpointConversionError('Not an official SFMNet discriminator state dict: expected '
                                        "'features.0.filter.weight' with 3 (image) or 6 (spectrum) input channels.")
    network = SFMNetSpatialDiscriminator if first_layer.shape[1] == 3 else SFMNetFrequencyDiscriminator
    with torch.device('meta'):
        expected_shapes = {key: t.shape for key, t in network().state_dict().items()}
    key_map = {_official_discriminator_key(key): key for key in expected_shapes}
    return _renamed_and_checked(official_sd, key_map, expected_shapes, f'{network.__name__} (official)')


def load_sfmnet_checkpoint(path, map_location='cpu', **arch_kwargs):
    """Build ``SFMNet(**arch_kwargs)`` and load ``path`` into it strictly, converting official checkpoints on the fly.

    Accepts BasicSR checkpoints (``params_ema`` preferred over ``params``) and official ones (plain,
    ``{'state_dict': ...}``-wrapped and/or ``module.``-prefixed). Returns the model in eval mode.
    """
    state_dict = unwrap_checkpoint(torch.load(path, map_location=map_location, weights_only=True))
    if is_official_state_dict(state_dict):
        state_dict = convert_official_state_dict(
            state_dict, keep_unused_attention=arch_kwargs.get('keep_unused_attention', True))
    model = SFMNet(**arch_kwargs)
    model.load_state_dict(strip_module_prefix(state_dict), strict=True)
    return model.eval()


def unwrap_checkpoint(checkpoint):
    """The state dict inside a checkpoint: BasicSR's ``params_ema``/``params``, a ``state_dict`` entry, or itself."""
    for key in ('params_ema', 'params', 'state_dict'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='sfmnet-convert-official',
        description='Convert an official SFMNet checkpoint (generator or LightCNN-9 discriminator) to the '
                    "plugin's names, saved as BasicSR's {'params': state_dict}.")
    parser.add_argument('input', help='official checkpoint (.pth)')
    parser.add_argument('output', help='where to write the converted checkpoint')
    parser.add_argument('--drop-unused-attention', action='store_true',
                        help='drop the never-used second attention of every fusion block (generator only); '
                             'load the result into SFMNet(keep_unused_attention=False)')
    args = parser.parse_args(argv)

    try:
        checkpoint = load_torch_file(args.input, what='checkpoint')
    except (FileNotFoundError, UnsafeOrInvalidFileError) as error:
        print(f'sfmnet-convert-official: {error}', file=sys.stderr)
        return 1
    state_dict = unwrap_checkpoint(checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        print(f'sfmnet-convert-official: {args.input}: holds no state dict (a mapping of parameter names to '
              'tensors); expected an official SFMNet checkpoint.', file=sys.stderr)
        return 1
    state_dict = strip_module_prefix(state_dict)
    try:
        if is_official_discriminator_state_dict(state_dict):
            converted = convert_official_discriminator_state_dict(state_dict)
        else:
            converted = convert_official_state_dict(state_dict, keep_unused_attention=not args.drop_unused_attention)
    except CheckpointConversionError as error:
        print(f'sfmnet-convert-official: {args.input}: {error}', file=sys.stderr)
        return 1
    try:
        atomic_torch_save({'params': converted}, args.output)
    except (OSError, RuntimeError) as error:  # missing folder, a folder as output, read-only or full disk
        cause = getattr(error, 'strerror', None) or str(error).strip().splitlines()[0]
        print(f'sfmnet-convert-official: cannot write {args.output}: {cause}', file=sys.stderr)
        return 1
    num_params = sum(t.numel() for t in converted.values())
    print(f'Wrote {args.output}: {len(converted)} tensors, {num_params:,} parameters.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
