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
import sys

from sfmnet_cli.arguments import existing_output, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.checkpoints.io.NETWORK_FORMATS
FORMATS = ('pth', 'safetensors')


def build_parser():
    parser = tool_parser('sfmnet-convert', __doc__)
    parser.add_argument('input', help="the plugin's checkpoint (.pth or .safetensors)")
    parser.add_argument('output', help='where to write it (must not exist yet)')
    parser.add_argument('--format', choices=FORMATS, help='format of OUTPUT (default: from its suffix)')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    args = build_parser().parse_args(argv)
    if existing_output('sfmnet-convert', args.output):
        return 1
    return run_tool('convert', args, 'sfmnet-convert')


if __name__ == '__main__':
    sys.exit(main())
