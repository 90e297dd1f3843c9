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

Unreadable files, sizes the network cannot take, inputs larger than an LR face (``--max-input-side``) and clashing
output names are reported at the end while the rest is processed. Exit status: 0 if at least one image was
written (and, with ``--strict``, no input was bad), otherwise 1.
"""
import os
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
from sfmnet_plugin.utils.output_paths import OutputPathError, refuse_links


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


def read_inputs(args, scale, bad):
    """``{(width, height): [(path, stem, image)]}`` of the usable inputs; the others are added to ``bad``.

    Everything is read first (LR faces are small) so that same-sized images can share batches.
    """
    groups, output_names = {}, {}
    for path in common.collect_inputs(args.inputs, bad):
        stem = osp.splitext(osp.basename(path))[0]
        if stem in output_names:  # e.g. a.png and a.jpg: one would silently overwrite the other
            bad.append((path, f'same output name {stem}.png as {output_names[stem]}'))
            continue
        try:
            image = read_image(path, args.size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            bad.append((path, f'unreadable image: {error}'))
            continue
        if max(image.size) > args.max_input_side:
            bad.append((path, f'wrong size: {image.width}x{image.height} is larger than an LR face '
                              f'(--max-input-side {args.max_input_side}); {size_hint(scale)}'))
            continue
        output_names[stem] = path
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


def check_output_folder(args):
    """Refuse an ``--output`` that is a file, an input folder, or would receive a file over an input image."""
    output = osp.realpath(args.output)
    if osp.exists(output) and not osp.isdir(output):
        raise InferenceError(f'--output {args.output}: is a file, not a folder; choose a folder for the SR images.')
    inputs = common.collect_inputs(args.inputs, [])
    for folder in [item for item in args.inputs if osp.isdir(item)]:
        if osp.realpath(folder) == output:
            raise InferenceError(f'--output {args.output} is the input folder {folder}: the SR images would be written '
                             'over or among the inputs; choose another folder.')
    input_files = {osp.realpath(path): path for path in inputs}
    for path in inputs:
        stem = osp.splitext(osp.basename(path))[0]
        names = (f'{stem}.png', f'{stem}_sbs.png')
        for name in names:
            if osp.join(output, name) in input_files:
                raise InferenceError(f'--output {args.output}: writing {name} would overwrite the input '
                                 f'{input_files[osp.join(output, name)]}; choose another folder.')
        refuse_links([osp.join(args.output, name) for name in names])


def run(args) -> int:
    check_output_folder(args)
    restorer = FaceRestorer(args.checkpoint, common.network_options(args), scale=args.scale, param_key=args.param_key,
                            device=args.device, precision=args.precision, backend=args.backend,
                            compile=args.compile)
    bad: list[tuple[str, str]] = []
    groups = read_inputs(args, restorer.scale, bad)
    try:
        os.makedirs(args.output, exist_ok=True)
        written = process(restorer, groups, args, bad)
    except OSError as error:  # read-only or full disk: name the output folder
        raise InferenceError(f'cannot write the SR images to {args.output}: '
                             f'{error.strerror or error} (is the disk full or the folder read-only?)') from error

    return common.report(f'Wrote {written} SR image(s) to {args.output}.', written, bad, 'input(s)', args.strict)


def main(argv: list[str] | None = None) -> int:
    from sfmnet_plugin.utils.process_settings import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.size is not None and args.size < 1) or args.max_input_side < 1:
        print('sfmnet-infer: error: --batch-size, --size and --max-input-side must be positive.', file=sys.stderr)
        return 1
    try:
        return run(args)
    except (InferenceError, OutputPathError) as error:
        print(f'sfmnet-infer: error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
