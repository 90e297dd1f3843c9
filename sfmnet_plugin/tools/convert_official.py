"""The body of ``sfmnet-convert-official`` (its command line and manual: :mod:`sfmnet_cli.convert_official`):
convert an official checkpoint to the plugin's names and say which network it is."""
import argparse
import sys

import torch
from basicsr.archs import build_network

from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint, unwrap_checkpoint
from sfmnet_plugin.checkpoints.io import load_checkpoint_file, save_checkpoint_file
from sfmnet_plugin.utils.output_guard import OutputPlan
from sfmnet_plugin.utils.output_paths import output_write_error
from sfmnet_plugin.utils.profiling import count_parameters


def run(args: argparse.Namespace) -> int:
    def fail(message):
        print(f'sfmnet-convert-official: {message}', file=sys.stderr)
        return 1

    plan = OutputPlan(inputs={'input checkpoint': args.input}, option='output')
    plan.add(args.output)
    plan.check()  # never over the input, never through a link, never into a read-only folder
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

