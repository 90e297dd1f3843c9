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
from os import path as osp

import numpy as np
import torch
from basicsr.utils import img2tensor, tensor2img
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import read_rgb_image, write_png
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.face_restorer import PRECISIONS
from sfmnet_plugin.inference.network_options import FACE_SIZE
from sfmnet_plugin.tools import common
from sfmnet_plugin.utils.error_boundary import console_script
from sfmnet_plugin.utils.output_guard import OutputPlan


def build_parser():
    parser = common.tool_parser('sfmnet-infer', __doc__)
    common.add_inputs_and_output(parser, 'INPUT', 'LR face images and/or folders of them',
                          'folder for the SR PNGs (created if needed)')
    common.add_network_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=8, help='images per forward pass (default: %(default)s)')
    common.add_device_argument(parser)
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
                             'make a huge SR image (default: %(default)s)')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 if any input file is bad')
    return parser


def read_image(path, size):
    """RGB PIL image of ``path``, resized to ``size`` x ``size`` with PIL bicubic when ``size`` is given.

    The preparation scripts' decoder (16-bit PNGs rescaled, not clipped to white; alpha composited over white).
    """
    image, _ = read_rgb_image(path)
    if size is not None:
        image = image.resize((size, size), Image.BICUBIC)
    return image


def size_hint(scale):
    return f'use --size {max(FACE_SIZE // scale, 1)} for {FACE_SIZE}-px faces' if scale else 'resize it with --size'


def read_inputs(args, scale, paths, bad):
    """``{(width, height): [(path, stem, image)]}`` of the usable ``paths``; the others are added to ``bad``.

    Everything is read first (LR faces are small) so that same-sized images can share batches.
    """
    groups = {}
    for path in paths:
        stem = osp.splitext(osp.basename(path))[0]
        try:
            image = read_image(path, args.size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            bad.append((path, f'unreadable image: {error}'))
            continue
        if max(image.size) > args.max_input_side:
            bad.append((path, f'wrong size: {image.width}x{image.height} is larger than an LR face '
                              f'(--max-input-side {args.max_input_side}); {size_hint(scale)}'))
            continue
        groups.setdefault(image.size, []).append((path, stem, image))
    return groups


def output_scale(lr, sr, options):
    """The integer factor between ``lr`` and ``sr`` (the same along both axes), or an error."""
    (height, width), (sr_height, sr_width) = lr.shape[-2:], sr.shape[-2:]
    if sr_height % height or sr_width % width or sr_height // height != sr_width // width:
        raise InferenceError(f'network_g {options} turned a {width}x{height} input into {sr_width}x{sr_height}: '
                             'not an integer upscale.')
    return sr_height // height


def process(restorer, groups, args, bad):
    """Run every size group through the network in batches and write the PNGs; returns how many were written."""
    written = 0
    with tqdm(total=sum(map(len, groups.values())), unit='img', disable=None) as progress, torch.inference_mode():
        for (width, height), items in sorted(groups.items()):
            for start in range(0, len(items), args.batch_size):
                batch = items[start:start + args.batch_size]
                lr = torch.stack(img2tensor([np.asarray(image, dtype=np.float32) / 255. for _, _, image in batch],
                                            bgr2rgb=False))
                try:
                    sr = restorer.restore(lr)
                except (RuntimeError, ValueError, AssertionError) as error:
                    # The network cannot take this size (e.g. SFMNet's HR must be divisible by 2 ** num_levels):
                    # every image of the group has it, so report them all and go on with the next size.
                    network_type = restorer.options['type']
                    bad += [(path, f'wrong size: network_g type {network_type!r} cannot take a {width}x{height} '
                                   f'input ({error}); {size_hint(restorer.scale)}')
                            for path, _, _ in items[start:]]
                    progress.update(len(items) - start)
                    break
                scale = output_scale(lr, sr, restorer.options)
                for (_, stem, image), sr_image in zip(batch, sr):
                    sr_rgb = tensor2img(sr_image, rgb2bgr=False, min_max=(0, 1))  # clamps, rounds to uint8
                    write_png(osp.join(args.output, f'{stem}.png'), sr_rgb)
                    if args.side_by_side:
                        bicubic = image.resize((width * scale, height * scale), Image.BICUBIC)
                        side_by_side = np.concatenate([np.asarray(bicubic), sr_rgb], axis=1)
                        write_png(osp.join(args.output, f'{stem}_sbs.png'), side_by_side)
                    written += 1
                progress.update(len(batch))
    return written


def plan_outputs(args, paths):
    """The output guard's plan: ``<stem>.png`` (and ``<stem>_sbs.png``) of every input, checked against the inputs,
    each other, links and the folder before anything is read or written."""
    plan = OutputPlan(args.output, common.input_labels(args.inputs) + [('input', path) for path in paths])
    for path in paths:
        stem = osp.splitext(osp.basename(path))[0]
        plan.add(osp.join(args.output, f'{stem}.png'), path)
        if args.side_by_side:
            plan.add(osp.join(args.output, f'{stem}_sbs.png'), path)
    return plan.check()


def run(args) -> int:
    bad: list[tuple[str, str]] = []
    paths = common.collect_inputs(args.inputs, bad)
    with plan_outputs(args, paths) as plan:
        restorer = FaceRestorer(args.checkpoint, common.network_options(args), scale=args.scale,
                                param_key=args.param_key, device=args.device, precision=args.precision,
                                backend=args.backend, compile=args.compile)
        groups = read_inputs(args, restorer.scale, paths, bad)
        plan.make_folder()
        written = process(restorer, groups, args, bad)
    return common.report(f'Wrote {written} SR image(s) to {args.output}.', written, bad, 'input(s)', args.strict)


@console_script('sfmnet-infer', user_errors=(InferenceError,))
def main(argv: list[str] | None = None) -> int:
    from sfmnet_plugin.utils.process_settings import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.size is not None and args.size < 1) or args.max_input_side < 1:
        print('sfmnet-infer: error: --batch-size, --size and --max-input-side must be positive.', file=sys.stderr)
        return 1
    if args.size is not None and args.size > args.max_input_side:
        print(f'sfmnet-infer: error: --size {args.size} is larger than --max-input-side {args.max_input_side} (an LR '
              'face is small, e.g. 16 for x8 faces of 128 px); choose a smaller --size.', file=sys.stderr)
        return 1
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
