"""``sfmnet-infer``: super-resolve LR face crops with a trained or official SFMNet checkpoint.

Usage::

    sfmnet-infer INPUT... --output DIR --checkpoint CKPT [--opt options/x.yml | --arch-json '{...}'] [--scale S]
                 [--param-key params_ema|params] [--batch-size N] [--device auto|cpu|cuda] [--size N]
                 [--side-by-side] [--strict]

INPUT is any mix of image files and folders (their .png/.jpg/.jpeg/.bmp/.webp files, not recursive). Every image
is read as RGB (grayscale is replicated, alpha dropped) and its SR result is written to ``DIR/<stem>.png``; with
``--side-by-side`` also ``DIR/<stem>_sbs.png`` = [PIL-bicubic upsampled LR | SR].

The network is ``network_g`` of a BasicSR option file (``_base_`` allowed), ``--arch-json``, or the default
``{"type": "SFMNet", "upscale": 8}``; ``--scale`` overrides its ``upscale``. The checkpoint is a BasicSR file
(``params_ema`` preferred, ``--param-key`` to choose) or an official SFMNet state dict, converted on the fly.

Unreadable files, wrong sizes and clashing output names are reported at the end and the rest is processed. Exit
status: 0 if at least one image was written (and, with ``--strict``, no file was bad), otherwise 1.
"""
import argparse
import json
import os
import sys
from os import path as osp

import numpy as np
import torch
from basicsr.archs import build_network
from basicsr.utils import img2tensor, imwrite, tensor2img
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.option_files import load_merged_options
from sfmnet_plugin.tools.convert_official import (
    CheckpointConversionError,
    convert_official_state_dict,
    format_keys,
    is_official_state_dict,
    strip_module_prefix,
    unwrap_checkpoint,
)

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
FACE_SIZE = 128  # SFMNet's HR face size: the LR size to suggest is FACE_SIZE / scale


class InferError(Exception):
    """A problem that stops the whole run (bad options or checkpoint); printed without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(prog='sfmnet-infer', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='LR face images and/or folders of them')
    parser.add_argument('--output', required=True, help='folder for the SR PNGs (created if needed)')
    parser.add_argument('--checkpoint', required=True, help='BasicSR checkpoint or official SFMNet state dict')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='BasicSR option file whose network_g is used')
    network.add_argument('--arch-json', help='network_g as JSON, e.g. \'{"type": "SFMNet", "num_feat": 32}\'')
    parser.add_argument('--scale', type=int, help='upscale factor (overrides network_g; default 8)')
    parser.add_argument('--param-key', choices=['params_ema', 'params'],
                        help='state dict inside a BasicSR checkpoint (default: params_ema when present)')
    parser.add_argument('--batch-size', type=int, default=8, help='images per forward pass (default: %(default)s)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                        help='auto: cuda when available (default: %(default)s)')
    parser.add_argument('--size', type=int, metavar='N',
                        help='resize every input to NxN with PIL bicubic first (e.g. 16 for x8 faces)')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write <stem>_sbs.png: [bicubic-upsampled LR | SR]')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 if any input file is bad')
    return parser


def network_options(args) -> dict:
    """``network_g`` from ``--opt`` / ``--arch-json`` / the default, with ``--scale`` applied."""
    if args.opt:
        try:
            options = load_merged_options(args.opt).get('network_g')
        except FileNotFoundError as error:
            raise InferError(str(error)) from error
        if not isinstance(options, dict):
            raise InferError(f'{args.opt} has no network_g section.')
    elif args.arch_json:
        try:
            options = json.loads(args.arch_json)
        except json.JSONDecodeError as error:
            raise InferError(f'--arch-json is not valid JSON: {error}') from error
        if not isinstance(options, dict):
            raise InferError('--arch-json must be a JSON object such as {"type": "SFMNet", "upscale": 8}.')
    else:
        options = {'type': 'SFMNet', 'upscale': 8}
    options = dict(options)
    options.setdefault('type', 'SFMNet')
    if args.scale is not None:
        options['upscale'] = args.scale
    return options


def load_state_dict(path, param_key, keep_unused_attention) -> dict:
    """The plugin-named state dict in ``path``; official checkpoints are converted on the fly."""
    if not osp.isfile(path):
        raise InferError(f'checkpoint not found: {path}')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or non-torch file
        raise InferError(f'cannot read checkpoint {path}: {error}') from error
    if param_key is None:
        state_dict = unwrap_checkpoint(checkpoint)
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get(param_key), dict):
        state_dict = checkpoint[param_key]
    else:
        entries = sorted(checkpoint) if isinstance(checkpoint, dict) else []
        raise InferError(f'checkpoint {path} has no {param_key!r} entry (top-level keys: {entries[:10]}).')
    if not isinstance(state_dict, dict):
        raise InferError(f'checkpoint {path} holds no state dict.')
    state_dict = strip_module_prefix(state_dict)
    if is_official_state_dict(state_dict):
        try:
            state_dict = convert_official_state_dict(state_dict, keep_unused_attention=keep_unused_attention)
        except CheckpointConversionError as error:
            raise InferError(f'official checkpoint {path} could not be converted: {error}') from error
    return state_dict


def _architecture_of(state_dict) -> dict:
    """SFMNet options read off a state dict's key names and shapes; only used to phrase mismatch hints."""
    def indices(prefix):
        return sorted({int(key[len(prefix):].split('.')[0]) for key in state_dict if key.startswith(prefix)})

    head = state_dict['spatial_branch.head.conv.weight']
    temperatures = [t for key, t in state_dict.items() if key.endswith('.cross_attention.temperature')]
    return {
        'num_feat': head.shape[0],
        'num_in_ch': head.shape[1],
        'num_levels': len(indices('spatial_branch.downsamplers.')),
        'num_resblocks': len(indices('spatial_branch.encoder_blocks.0.resblocks.')),
        'num_heads': temperatures[0].shape[0] if temperatures else None,
        'keep_unused_attention': any('.unused_attention.' in key for key in state_dict),
        'fusion_positions': indices('interactions.'),
    }


def load_weights(model, state_dict, path, options):
    """Load strictly; on a mismatch raise an error with a few offending keys and the options that would fit."""
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    missing, unexpected = set(expected) - set(state_dict), set(state_dict) - set(expected)
    mismatched = [f'{key} {tuple(state_dict[key].shape)} vs {expected[key]}'
                  for key in sorted(set(expected) & set(state_dict)) if tuple(state_dict[key].shape) != expected[key]]
    if not (missing or unexpected or mismatched):
        model.load_state_dict(state_dict, strict=True)
        return
    lines = [format_keys(title, keys, limit=3) for title, keys in
             [('missing keys', missing), ('unexpected keys', unexpected),
              ('shape mismatches (checkpoint vs network)', mismatched)] if keys]
    if 'spatial_branch.head.conv.weight' in state_dict:  # an SFMNet checkpoint: name the differing options
        ours, theirs = _architecture_of(model.state_dict()), _architecture_of(state_dict)
        if theirs['num_levels'] != ours['num_levels']:
            del ours['fusion_positions']  # follows from num_levels: naming it too would only add noise
        lines += [f'the checkpoint has {name} {theirs[name]} but the network has {ours[name]}'
                  for name in ours if theirs[name] != ours[name]]
    raise InferError(f'checkpoint {path} does not fit network_g {options}:\n  ' + '\n  '.join(lines)
                     + '\nSet the matching network_g options with --opt or --arch-json.')


def collect_inputs(inputs, bad):
    """Image paths from files and folders (non-recursive, sorted); missing paths are added to ``bad``."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            paths += sorted(osp.join(item, name) for name in os.listdir(item)
                            if name.lower().endswith(IMAGE_EXTENSIONS) and osp.isfile(osp.join(item, name)))
        elif osp.isfile(item):
            paths.append(item)  # named explicitly: tried whatever its extension
        else:
            bad.append((item, 'not found'))
    return paths


def read_image(path, size):
    """RGB PIL image of ``path``, resized to ``size`` x ``size`` with PIL bicubic when ``size`` is given."""
    with Image.open(path) as image:
        image = image.convert('RGB')  # also forces the full decode, so truncated files fail here
    if size is not None:
        image = image.resize((size, size), Image.BICUBIC)
    return image


def size_problem(width, height, scale, multiple):
    """Why a ``width`` x ``height`` LR image cannot go through the network, or None if it can."""
    if (width * scale) % multiple == 0 and (height * scale) % multiple == 0:
        return None
    return (f'wrong size: {width}x{height} at x{scale} gives {width * scale}x{height * scale}, which must be '
            f'divisible by {multiple}; use --size {max(FACE_SIZE // scale, 1)}')


def choose_device(name):
    if name == 'cuda' and not torch.cuda.is_available():
        raise InferError('--device cuda was requested but CUDA is not available.')
    return torch.device('cuda' if name == 'cuda' or (name == 'auto' and torch.cuda.is_available()) else 'cpu')


def run(args) -> int:
    options = network_options(args)
    if options['type'] != 'SFMNet':
        raise InferError(f"sfmnet-infer runs SFMNet, not network_g type {options['type']!r}.")
    try:
        model = build_network(options)
    except (TypeError, ValueError) as error:
        raise InferError(f'cannot build network_g {options}: {error}') from error
    state_dict = load_state_dict(args.checkpoint, args.param_key, options.get('keep_unused_attention', True))
    load_weights(model, state_dict, args.checkpoint, options)
    device = choose_device(args.device)
    model = model.to(device).eval()
    scale, multiple = model.upscale, 2 ** model.num_levels

    # Read everything first (LR faces are small) so that same-sized images share batches.
    bad, groups, output_names = [], {}, {}
    for path in collect_inputs(args.inputs, bad):
        stem = osp.splitext(osp.basename(path))[0]
        if stem in output_names:  # e.g. a.png and a.jpg: one would silently overwrite the other
            bad.append((path, f'same output name {stem}.png as {output_names[stem]}'))
            continue
        try:
            image = read_image(path, args.size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            bad.append((path, f'unreadable image: {error}'))
            continue
        problem = size_problem(*image.size, scale, multiple)
        if problem:
            bad.append((path, problem))
            continue
        output_names[stem] = path
        groups.setdefault(image.size, []).append((stem, image))

    os.makedirs(args.output, exist_ok=True)
    written = 0
    with tqdm(total=sum(map(len, groups.values())), unit='img', disable=None) as progress, torch.inference_mode():
        for (width, height), items in sorted(groups.items()):
            for start in range(0, len(items), args.batch_size):
                batch = items[start:start + args.batch_size]
                lr = torch.stack(img2tensor([np.asarray(image, dtype=np.float32) / 255. for _, image in batch],
                                            bgr2rgb=False))
                sr = model(lr.to(device)).cpu()
                for (stem, image), sr_image in zip(batch, sr):
                    sr_bgr = tensor2img(sr_image, rgb2bgr=True, min_max=(0, 1))  # clamps, rounds to uint8
                    imwrite(sr_bgr, osp.join(args.output, f'{stem}.png'))
                    if args.side_by_side:
                        bicubic = image.resize((width * scale, height * scale), Image.BICUBIC)
                        sbs = np.concatenate([np.asarray(bicubic)[..., ::-1], sr_bgr], axis=1)
                        imwrite(sbs, osp.join(args.output, f'{stem}_sbs.png'))
                    written += 1
                progress.update(len(batch))

    print(f'Wrote {written} SR image(s) to {args.output}.')
    if bad:
        print(f'{len(bad)} input(s) skipped:', file=sys.stderr)
        for path, reason in bad:
            print(f'  {path}: {reason}', file=sys.stderr)
    return 0 if written and not (args.strict and bad) else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.size is not None and args.size < 1):
        print('sfmnet-infer: error: --batch-size and --size must be positive.', file=sys.stderr)
        return 1
    try:
        return run(args)
    except InferError as error:
        print(f'sfmnet-infer: error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
