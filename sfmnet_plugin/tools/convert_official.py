"""``sfmnet-convert-official``: convert an official checkpoint to the plugin's names and say which network it is.

Usage (writes BasicSR's ``{'params': state_dict}`` format, loadable with ``strict_load_g: true``)::

    sfmnet-convert-official IN.pth OUT.pth [--drop-unused-attention] [--format pth|safetensors]

OUT is a ``.pth`` or, with ``--format safetensors`` (the default for an OUT named ``*.safetensors``), a safetensors
file, which cannot carry code (see :mod:`sfmnet_plugin.checkpoints.io`). Either carries the options that build the
network (``network_g``; ``network_d`` for a discriminator), so ``sfmnet-infer --checkpoint OUT`` needs no ``--opt``.
IN (``.pth`` or ``.safetensors``) may be a plain state dict, one wrapped in ``{'state_dict': ...}`` or BasicSR's
``params``/``params_ema``, and/or use DataParallel's ``module.`` prefixes. Recognised (see
:mod:`sfmnet_plugin.checkpoints`): the SFMNet generator and its two LightCNN-9 discriminators; SPARNet,
SPARNet-Light-Attn3D, the SPARNetHD generator (or its EMA copy), the SPARNetHD multi-scale discriminator; WFEN;
CTCNet; UFSRNet; SISN at x4 or x8 (its solver's DataParallel files). Every key and shape is checked; a wrong
checkpoint gets an error naming the first mismatched key, and nothing is written.
"""
import argparse
import os
import sys

import torch
from basicsr.archs import build_network

from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint, unwrap_checkpoint
from sfmnet_plugin.checkpoints.io import NETWORK_FORMATS, load_checkpoint_file, save_checkpoint_file
from sfmnet_plugin.utils.error_boundary import console_script
from sfmnet_plugin.utils.output_guard import OutputPlan
from sfmnet_plugin.utils.output_paths import output_write_error
from sfmnet_plugin.utils.profiling import count_parameters


@console_script('sfmnet-convert-official')
def main(argv: list[str] | None = None) -> int:
    from sfmnet_plugin.utils.process_settings import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    parser = argparse.ArgumentParser(
        prog='sfmnet-convert-official',
        description="Convert an official SFMNet, SPARNet-family, WFEN, UFSRNet or SISN checkpoint to the plugin's "
                    "names, saved as BasicSR's {'params': state_dict}.")
    parser.add_argument('input', help='official checkpoint (.pth or .safetensors)')
    parser.add_argument('output', help='where to write the converted checkpoint (must not exist yet)')
    parser.add_argument('--drop-unused-attention', action='store_true',
                        help='SFMNet generator only: drop the never-used second attention of every fusion block; '
                             'load the result into SFMNet(keep_unused_attention=False)')
    parser.add_argument('--format', choices=sorted(NETWORK_FORMATS),
                        help='file format of OUTPUT (default: safetensors for a name ending in .safetensors, else '
                             'pth)')
    args = parser.parse_args(argv)

    def fail(message):
        print(f'sfmnet-convert-official: {message}', file=sys.stderr)
        return 1

    plan = OutputPlan(inputs={'input checkpoint': args.input}, option='output')
    plan.add(args.output)
    plan.check()  # never over the input, never through a link, never into a read-only folder
    if os.path.lexists(args.output):
        return fail(f'{args.output} already exists; choose another output path (nothing is overwritten).')
    # never runs code: a missing, empty, truncated, random or code-carrying file is one line naming it
    checkpoint = load_checkpoint_file(args.input, what='checkpoint')
    state_dict = unwrap_checkpoint(checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        return fail(f'{args.input}: holds no state dict (a mapping of parameter names to tensors); expected an '
                    'official checkpoint.')
    try:
        converted, found = convert_official_checkpoint(state_dict, keep_unused_attention=not args.drop_unused_attention)
    except CheckpointConversionError as error:
        return fail(f'{args.input}: {error}')
    role = 'network_d' if 'discriminator' in found.name.lower() else 'network_g'
    try:  # OUT is either absent or complete
        save_checkpoint_file({'params': converted}, args.output, {role: found.network_options}, args.format)
    except RuntimeError as error:  # torch's failed write (a full disk) has no errno; OSErrors name the path already
        raise output_write_error(args.output, error) from error
    with torch.device('meta'):  # count the parameters (not the buffers) of the network the weights are for
        num_params = count_parameters(build_network(dict(found.network_options)))
    print(f'Found: {found.name}. Wrote {args.output}: {len(converted)} tensors, {num_params:,} parameters; '
          f'{role}: {found.network_options}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
