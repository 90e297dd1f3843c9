"""``sfmnet-infer``: super-resolve LR face crops with a trained BasicSR network or an official checkpoint.

Usage::

    sfmnet-infer INPUT... --output DIR --checkpoint CKPT [--opt options/x.yml | --arch-json '{...}'] [--scale S]
                 [--param-key params_ema|params] [--batch-size N] [--device auto|cpu|cuda]
                 [--precision fp32|bf16|fp16] [--backend torch|onnxruntime] [--compile] [--size N]
                 [--side-by-side] [--max-input-side N] [--strict]

INPUT is any mix of image files and folders (their .png/.jpg/.jpeg/.bmp/.webp files, not recursive). Every image
is read as RGB by the preparation scripts' decoder (grey replicated, alpha composited over white, 16-bit scaled to
8 bits); ``--size N`` first resizes it to NxN with PIL bicubic (the
LR of face SR benchmarks). Its SR result, clamped to [0, 1], is written to ``DIR/<stem>.png``; with
``--side-by-side`` also ``DIR/<stem>_sbs.png`` = [PIL-bicubic upsampled LR | SR].

The network is ``network_g`` of a BasicSR option file (``_base_`` inheritance allowed) or ``--arch-json``: any
architecture in BasicSR's registry works. Without them the checkpoint names it: a checkpoint the plugin wrote
(training, ``sfmnet-demo``, ``sfmnet-convert-official``) carries its ``network_g``, and an official checkpoint is
recognised (e.g. SPARNet x8); an explicit option file still wins. ``--scale`` sets its ``upscale`` (or ``scale``)
option. The checkpoint is a BasicSR file, ``.pth`` or ``.safetensors`` (``params_ema`` preferred when present,
``--param-key`` to choose), a plain state dict, or an official SFMNet or SPARNet-family state dict, converted on
the fly.

Unreadable files, sizes the network cannot take and inputs larger than an LR face (``--max-input-side``) are
reported at the end while the rest is processed, and so is every input skipped (a dangling link, a link loop, a
FIFO or device under an image name). Outputs go through the plugin's output guard before anything is written: two
inputs that would give one output name (``a.png`` and ``a.jpg``; ``a.png`` and ``a_sbs.png`` with
``--side-by-side``), an output over an input, a symbolic link under an output name and an ``--output`` that is or
holds an input are refused, each in one line. Exit status: 0 if at least one image was
written (and, with ``--strict``, no input was bad), otherwise 1.
"""
import sys

from sfmnet_cli.arguments import add_device_argument, add_inputs_and_output, add_network_arguments, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.inference.face_restorer.PRECISIONS
PRECISIONS = ('bf16', 'fp16', 'fp32')


MAX_INPUT_SIDE = 1024


def build_parser():
    parser = tool_parser('sfmnet-infer', __doc__)
    add_inputs_and_output(parser, 'INPUT', 'LR face images and/or folders of them',
                          'folder for the SR PNGs (created if needed)')
    add_network_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=8, help='images per forward pass (default: %(default)s)')
    add_device_argument(parser)
    parser.add_argument('--backend', choices=['torch', 'onnxruntime'], default='torch',
                        help='onnxruntime: --checkpoint is an .onnx file written by sfmnet-export '
                             '(default: %(default)s)')
    parser.add_argument('--precision', choices=sorted(PRECISIONS), default='fp32',
                        help='autocast dtype: bf16 is faster than fp32 on CPUs with AVX512-BF16/AMX, not on GPUs '
                             'at face sizes (measurements: docs/speed.md) (default: %(default)s)')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the network: the first batch compiles (slow: docs/speed.md), the '
                             'following ones run faster; for folders of many faces')
    parser.add_argument('--size', type=int, metavar='N',
                        help='resize every input to NxN with PIL bicubic first (e.g. 16 for x8 faces)')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write <stem>_sbs.png: [bicubic-upsampled LR | SR]')
    parser.add_argument('--max-input-side', type=int, default=128, metavar='N',
                        help='refuse (after --size) inputs with a side above N: a photo instead of an LR face would '
                             'make a huge SR image (default: %(default)s, at most 1024)')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 if any input file is bad')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.size is not None and args.size < 1) or args.max_input_side < 1:
        print('sfmnet-infer: error: --batch-size, --size and --max-input-side must be positive.', file=sys.stderr)
        return 1
    if args.max_input_side > MAX_INPUT_SIDE:
        print(f'sfmnet-infer: error: --max-input-side {args.max_input_side}: expected at most {MAX_INPUT_SIDE} (the '
              'largest face input, SPARNetHD\'s, is 512; a larger image, super-resolved whole, would not fit in '
              'memory): for whole photos use sfmnet-restore.', file=sys.stderr)
        return 1
    if args.size is not None and args.size > args.max_input_side:
        print(f'sfmnet-infer: error: --size {args.size} is larger than --max-input-side {args.max_input_side} (an LR '
              'face is small, e.g. 16 for x8 faces of 128 px); choose a smaller --size.', file=sys.stderr)
        return 1
    return run_tool('infer', args, 'sfmnet-infer')


if __name__ == '__main__':
    sys.exit(main())
