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
import sys

from sfmnet_cli.arguments import existing_output, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.checkpoints.io.NETWORK_FORMATS
FORMATS = ('pth', 'safetensors')


def build_parser():
    parser = tool_parser('sfmnet-convert-official', __doc__)
    parser.add_argument('input', help='official checkpoint (.pth or .safetensors)')
    parser.add_argument('output', help='where to write the converted checkpoint (must not exist yet)')
    parser.add_argument('--drop-unused-attention', action='store_true',
                        help='SFMNet generator only: drop the never-used second attention of every fusion block; '
                             'load the result into SFMNet(keep_unused_attention=False)')
    parser.add_argument('--format', choices=sorted(FORMATS),
                        help='file format of OUTPUT (default: safetensors for a name ending in .safetensors, else '
                             'pth)')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    args = build_parser().parse_args(argv)
    if existing_output('sfmnet-convert-official', args.output):
        return 1
    return run_tool('convert_official', args, 'sfmnet-convert-official')


if __name__ == '__main__':
    sys.exit(main())
