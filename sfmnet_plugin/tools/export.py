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
from os import path as osp

import torch

from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.onnx import DEFAULT_OPSET, ExportError, OnnxNetwork, export_onnx
from sfmnet_plugin.tools.common import add_network_arguments, network_options, tool_parser
from sfmnet_plugin.utils.error_boundary import console_script
from sfmnet_plugin.utils.numerics import input_sensitivity
from sfmnet_plugin.utils.output_guard import OutputPlan


def build_parser():
    parser = tool_parser('sfmnet-export', __doc__)
    add_network_arguments(parser)
    parser.add_argument('--lr-size', type=int, nargs='+', required=True, metavar='N',
                        help='LR input size: H, or H W (e.g. 16 for x8 faces of 128 px)')
    parser.add_argument('--output', help='ONNX file to write (default: the checkpoint name with .onnx)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    return parser


def check_against_torch(net, onnx_path, lr_size):
    """Largest |ONNX Runtime - PyTorch| on a random batch, and PyTorch's own sensitivity to a 1e-7 change."""
    lr = torch.rand(2, 3, *lr_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(lr)
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    difference = float((OnnxNetwork(onnx_path)(lr) - expected).abs().max())
    return difference, input_sensitivity(net, lr)


@console_script('sfmnet-export', user_errors=(InferenceError, ExportError))
def main(argv: list[str] | None = None) -> int:
    from sfmnet_plugin.utils.process_settings import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    args = build_parser().parse_args(argv)
    if len(args.lr_size) > 2 or min(args.lr_size) < 1:
        print('sfmnet-export: error: --lr-size takes one or two positive sizes (H [W]).', file=sys.stderr)
        return 1
    lr_size = (args.lr_size[0], args.lr_size[-1])
    output = args.output or osp.splitext(args.checkpoint)[0] + '.onnx'
    plan = OutputPlan(inputs={'--checkpoint': args.checkpoint, '--opt': args.opt}, option='--output')
    plan.add(output)
    plan.check()  # never over an input, never through a link, never into a read-only folder
    if osp.exists(output) and not args.overwrite:
        print(f'sfmnet-export: error: {output} exists; choose another --output or pass --overwrite.', file=sys.stderr)
        return 1
    restorer = FaceRestorer(args.checkpoint, network_options(args), scale=args.scale, param_key=args.param_key,
                            device='cpu')
    export_onnx(restorer.net, output, lr_size, restorer.options, opset=args.opset,
                progress=lambda message: print(f'sfmnet-export: {message}', file=sys.stderr, flush=True))
    difference, sensitivity = check_against_torch(restorer.net, output, lr_size)
    print(f'Wrote {output} ({os.path.getsize(output) / 2**20:.1f} MiB): {restorer.options["type"]}, '
          f'LR {lr_size[0]}x{lr_size[1]}, dynamic batch, opset {args.opset}.')
    print(f'ONNX Runtime vs PyTorch on a random batch: max |difference| {difference:.2e} '
          f'(PyTorch itself moves by {sensitivity:.2e} for a 1e-7 input change).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
