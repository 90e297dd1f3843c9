"""``sfmnet-convert``: rewrite one of the plugin's own checkpoints as ``.pth`` or ``.safetensors``, options included.

Usage::

    sfmnet-convert IN OUT [--format pth|safetensors]

IN is a checkpoint the plugin wrote (``net_g_*.pth``, ``net_g_*.safetensors``, a demo model, the output of
``sfmnet-convert-official``): every state dict it holds (``params``, ``params_ema``) and the options stored with it
(``network_g``, ``network_d``) go to OUT unchanged, so ``sfmnet-infer --checkpoint OUT`` needs no ``--opt``. OUT's
format follows ``--format``, else its suffix (``.safetensors``, else ``.pth``). A ``.safetensors`` file cannot carry
code (:mod:`sfmnet_plugin.checkpoints.io`). Official checkpoints go through ``sfmnet-convert-official``, which also
renames their keys; nothing is overwritten.
"""
import argparse
import os
import sys

FORMATS = ('pth', 'safetensors')


def build_parser():
    parser = argparse.ArgumentParser(prog='sfmnet-convert', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help="the plugin's checkpoint (.pth or .safetensors)")
    parser.add_argument('output', help='where to write it (must not exist yet)')
    parser.add_argument('--format', choices=FORMATS, help='format of OUTPUT (default: from its suffix)')
    return parser


def split_checkpoint(checkpoint):
    """``(state_dicts, options)`` of a plugin checkpoint: the tensor mappings and the stored network options."""
    import torch

    if not isinstance(checkpoint, dict):
        return {}, {}
    state_dicts = {key: value for key, value in checkpoint.items()
                   if isinstance(value, dict) and value and all(isinstance(t, torch.Tensor) for t in value.values())}
    options = {key: value for key, value in checkpoint.items()
               if key.startswith('network_') and isinstance(value, dict) and 'type' in value}
    return state_dicts, options


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def fail(message):
        print(f'sfmnet-convert: {message}', file=sys.stderr)
        return 1

    from sfmnet_plugin.checkpoints import recognise_official_checkpoint, unwrap_checkpoint
    from sfmnet_plugin.checkpoints.io import load_checkpoint_file, save_checkpoint_file
    from sfmnet_plugin.utils.output_paths import output_write_error
    from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

    if os.path.exists(args.output):
        return fail(f'{args.output} already exists; choose another output path (nothing is overwritten).')
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


if __name__ == '__main__':
    sys.exit(main())
