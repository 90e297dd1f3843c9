"""The body of ``sfmnet-export`` (its command line and manual: :mod:`sfmnet_cli.export`): write a trained face
network as an ONNX file and compare ONNX Runtime's output with PyTorch's."""
import argparse
import os
import sys

import torch

from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.onnx import ExportError, OnnxNetwork, export_onnx
from sfmnet_plugin.tools.common import network_options
from sfmnet_plugin.utils.numerics import input_sensitivity
from sfmnet_plugin.utils.output_guard import OutputPlan

USER_ERRORS = (InferenceError, ExportError)  # one line each, as the plugin's error boundary prints them


def check_against_torch(net, onnx_path, lr_size):
    """Largest |ONNX Runtime - PyTorch| on a random batch, and PyTorch's own sensitivity to a 1e-7 change."""
    lr = torch.rand(2, 3, *lr_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(lr)
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    difference = float((OnnxNetwork(onnx_path)(lr) - expected).abs().max())
    return difference, input_sensitivity(net, lr)


def run(args: argparse.Namespace) -> int:
    lr_size = (args.lr_size[0], args.lr_size[-1])
    output = args.output  # the front has named it, and refused an existing one without --overwrite
    plan = OutputPlan(inputs={'--checkpoint': args.checkpoint, '--opt': args.opt}, option='--output')
    plan.add(output)
    plan.check()  # never over an input, never through a link, never into a read-only folder
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

