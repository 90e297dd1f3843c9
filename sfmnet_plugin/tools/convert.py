"""The body of ``sfmnet-convert`` (its command line and manual: :mod:`sfmnet_cli.convert`): rewrite one of the
plugin's own checkpoints as ``.pth`` or ``.safetensors``, its stored options included."""
import argparse
import sys

import torch

from sfmnet_plugin.checkpoints import recognise_official_checkpoint, unwrap_checkpoint
from sfmnet_plugin.checkpoints.io import load_checkpoint_file, save_checkpoint_file
from sfmnet_plugin.utils.output_paths import output_write_error
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError


def split_checkpoint(checkpoint):
    """``(state_dicts, options)`` of a plugin checkpoint: the tensor mappings and the stored network options."""
    if not isinstance(checkpoint, dict):
        return {}, {}
    state_dicts = {key: value for key, value in checkpoint.items()
                   if isinstance(value, dict) and value and all(isinstance(t, torch.Tensor) for t in value.values())}
    options = {key: value for key, value in checkpoint.items()
               if key.startswith('network_') and isinstance(value, dict) and 'type' in value}
    return state_dicts, options


def run(args: argparse.Namespace) -> int:
    def fail(message):
        print(f'sfmnet-convert: error: {message}', file=sys.stderr)
        return 1

    try:
        checkpoint = load_checkpoint_file(args.input, what='checkpoint')
    except (FileNotFoundError, UnsafeOrInvalidFileError) as error:
        return fail(str(error))
    state_dicts, options = split_checkpoint(checkpoint)
    if not options:
        inner = unwrap_checkpoint(checkpoint)
        if isinstance(inner, dict) and recognise_official_checkpoint(inner) is not None:
            return fail(f'{args.input} is an official checkpoint; convert it with sfmnet-convert-official.')
        if not state_dicts:
            return fail(f"{args.input}: holds no network weights (BasicSR's params / params_ema).")
        # a BasicSR checkpoint without stored options: the weights alone, as sfmnet-infer needs --opt for it
    try:
        save_checkpoint_file(state_dicts, args.output, options, args.format)
    except (OSError, RuntimeError) as error:  # a missing or read-only folder, a full disk
        return fail(str(output_write_error(args.output, error)))
    tensors = sum(len(state) for state in state_dicts.values())
    stored = ', '.join(f'{key}: {value}' for key, value in options.items()) or 'no network options stored'
    print(f'Wrote {args.output}: {", ".join(state_dicts)} ({tensors} tensors); {stored}')
    return 0

