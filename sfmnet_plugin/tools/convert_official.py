"""``sfmnet-convert-official``: convert an official checkpoint to the plugin's names and say which network it is.

Usage (writes BasicSR's ``{'params': state_dict}`` format, loadable with ``strict_load_g: true``)::

    sfmnet-convert-official IN.pth OUT.pth [--drop-unused-attention]

IN may be a plain state dict, one wrapped in ``{'state_dict': ...}`` or BasicSR's ``params``/``params_ema``,
and/or use DataParallel's ``module.`` prefixes. Recognised (see :mod:`sfmnet_plugin.checkpoints`): the SFMNet
generator and its two LightCNN-9 discriminators; SPARNet, SPARNet-Light-Attn3D, the SPARNetHD generator (or its
EMA copy) and the SPARNetHD multi-scale discriminator. Every key and shape is checked; a wrong checkpoint gets an
error naming the first mismatched key, and nothing is written.
"""
import argparse
import os
import sys

import torch
from basicsr.archs import build_network

from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint, unwrap_checkpoint
from sfmnet_plugin.utils.atomic import atomic_torch_save
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file


def main(argv=None) -> int:
    from sfmnet_plugin.utils.cpu_tuning import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    parser = argparse.ArgumentParser(
        prog='sfmnet-convert-official',
        description="Convert an official SFMNet or SPARNet-family checkpoint to the plugin's names, saved as "
                    "BasicSR's {'params': state_dict}.")
    parser.add_argument('input', help='official checkpoint (.pth)')
    parser.add_argument('output', help='where to write the converted checkpoint (must not exist yet)')
    parser.add_argument('--drop-unused-attention', action='store_true',
                        help='SFMNet generator only: drop the never-used second attention of every fusion block; '
                             'load the result into SFMNet(keep_unused_attention=False)')
    args = parser.parse_args(argv)

    def fail(message):
        print(f'sfmnet-convert-official: {message}', file=sys.stderr)
        return 1

    if os.path.exists(args.output):
        return fail(f'{args.output} already exists; choose another output path (nothing is overwritten).')
    try:  # weights_only: a missing, empty, truncated, random or code-carrying file is one line naming it
        checkpoint = load_torch_file(args.input, what='checkpoint')
    except (FileNotFoundError, UnsafeOrInvalidFileError) as error:
        return fail(str(error))
    state_dict = unwrap_checkpoint(checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        return fail(f'{args.input}: holds no state dict (a mapping of parameter names to tensors); expected an '
                    'official checkpoint.')
    try:
        converted, found = convert_official_checkpoint(state_dict, keep_unused_attention=not args.drop_unused_attention)
    except CheckpointConversionError as error:
        return fail(f'{args.input}: {error}')
    try:
        atomic_torch_save({'params': converted}, args.output)  # OUT is either absent or complete
    except (OSError, RuntimeError) as error:  # a missing or read-only folder, a full disk
        return fail(f'cannot write {args.output}: '
                    f'{getattr(error, "strerror", None) or str(error).strip().splitlines()[0]}')
    with torch.device('meta'):  # count the parameters (not the buffers) of the network the weights are for
        num_params = sum(p.numel() for p in build_network(dict(found.network_options)).parameters())
    print(f'Found: {found.name}. Wrote {args.output}: {len(converted)} tensors, {num_params:,} parameters; '
          f'network_g: {found.network_options}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
