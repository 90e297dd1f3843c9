"""``sfmnet-export``: write a trained face network as an ONNX file for ONNX Runtime (``sfmnet-infer --backend
onnxruntime``) or any other ONNX runtime.

Usage::

    sfmnet-export --checkpoint CKPT [--opt options/x.yml | --arch-json '{...}'] [--scale S] [--param-key KEY]
                  --lr-size 16 [--output model.onnx] [--opset 20] [--overwrite]

The network is built and loaded exactly as ``sfmnet-infer`` does (any registered architecture; official SFMNet
checkpoints are converted on the fly). The graph has a dynamic batch and a fixed LR size (``--lr-size H [W]``).
After writing, the tool runs the file with ONNX Runtime on a random batch and prints its largest difference to
PyTorch next to PyTorch's own output change for a 1e-7 input change (the network's sensitivity).
"""
import os
import sys

from sfmnet_cli.arguments import add_network_arguments, existing_output, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.inference.onnx.DEFAULT_OPSET
DEFAULT_OPSET = 20


def build_parser():
    parser = tool_parser('sfmnet-export', __doc__)
    add_network_arguments(parser)
    parser.add_argument('--lr-size', type=int, nargs='+', required=True, metavar='N',
                        help='LR input size: H, or H W (e.g. 16 for x8 faces of 128 px)')
    parser.add_argument('--output', help='ONNX file to write (default: the checkpoint name with .onnx)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    args = build_parser().parse_args(argv)
    if len(args.lr_size) > 2 or min(args.lr_size) < 1:
        print('sfmnet-export: error: --lr-size takes one or two positive sizes (H [W]).', file=sys.stderr)
        return 1
    args.output = args.output or os.path.splitext(args.checkpoint)[0] + '.onnx'
    if not args.overwrite and existing_output('sfmnet-export', args.output, '--overwrite'):
        return 1
    return run_tool('export', args, 'sfmnet-export')


if __name__ == '__main__':
    sys.exit(main())
