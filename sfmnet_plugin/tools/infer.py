"""The body of ``sfmnet-infer`` (its command line and manual: :mod:`sfmnet_cli.infer`): super-resolve LR face
crops with a trained BasicSR network or an official checkpoint, through the output guard, with a report of every
input skipped."""
import argparse
from os import path as osp

import numpy as np
import torch
from basicsr.utils import img2tensor, tensor2img
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import read_rgb_image, write_png
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.network_options import FACE_SIZE
from sfmnet_plugin.tools import common
from sfmnet_plugin.utils.output_guard import OutputPlan

USER_ERRORS = (InferenceError,)  # one line each, as the plugin's error boundary prints them


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


def run(args: argparse.Namespace) -> int:
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
