"""``sfmnet-infer``: super-resolve LR face crops with a trained BasicSR network or an official SFMNet checkpoint.

Usage::

    sfmnet-infer INPUT... --output DIR --checkpoint CKPT [--opt options/x.yml | --arch-json '{...}'] [--scale S]
                 [--param-key params_ema|params] [--batch-size N] [--device auto|cpu|cuda] [--size N]
                 [--side-by-side] [--max-input-side N] [--strict]

INPUT is any mix of image files and folders (their .png/.jpg/.jpeg/.bmp/.webp files, not recursive). Every image
is read as RGB by the preparation scripts' decoder (grey replicated, alpha composited over white, 16-bit scaled to
8 bits); ``--size N`` first resizes it to NxN with PIL bicubic (the
LR of face SR benchmarks). Its SR result, clamped to [0, 1], is written to ``DIR/<stem>.png``; with
``--side-by-side`` also ``DIR/<stem>_sbs.png`` = [PIL-bicubic upsampled LR | SR].

The network is ``network_g`` of a BasicSR option file (``_base_`` inheritance allowed), ``--arch-json``, or by
default ``{"type": "SFMNet", "upscale": 8}``: any architecture in BasicSR's registry works. ``--scale`` sets its
``upscale`` (or ``scale``) option. The checkpoint is a BasicSR file (``params_ema`` preferred when present,
``--param-key`` to choose), a plain state dict, or an official SFMNet state dict, converted on the fly.

Unreadable files, sizes the network cannot take, inputs larger than an LR face (``--max-input-side``) and clashing
output names are reported at the end while the rest is processed. Exit status: 0 if at least one image was
written (and, with ``--strict``, no input was bad), otherwise 1.
"""
import argparse
import inspect
import json
import os
import sys
from os import path as osp

import numpy as np
import torch
from basicsr.archs import build_network
from basicsr.utils import img2tensor, imwrite, tensor2img
from basicsr.utils.registry import ARCH_REGISTRY
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import IMAGE_EXTENSIONS, read_rgb_image
from sfmnet_plugin.option_files import load_merged_options
from sfmnet_plugin.tools.convert_official import (
    CheckpointConversionError,
    convert_official_state_dict,
    format_keys,
    is_official_state_dict,
    strip_module_prefix,
    unwrap_checkpoint,
)

FACE_SIZE = 128  # HR face size of the FSR benchmarks: the LR size to suggest is FACE_SIZE / scale
DEFAULT_NETWORK = {'type': 'SFMNet', 'upscale': 8}
SCALE_OPTION_NAMES = ('upscale', 'scale')  # what BasicSR architectures call their factor


class InferError(Exception):
    """A problem that stops the whole run (bad options or checkpoint); printed without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(prog='sfmnet-infer', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='LR face images and/or folders of them')
    parser.add_argument('--output', required=True, help='folder for the SR PNGs (created if needed)')
    parser.add_argument('--checkpoint', required=True, help='BasicSR checkpoint, state dict or official SFMNet one')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='BasicSR option file whose network_g is used')
    network.add_argument('--arch-json', help='network_g as JSON, e.g. \'{"type": "SFMNet", "num_feat": 32}\'')
    parser.add_argument('--scale', type=int, help="upscale factor: sets network_g's upscale (or scale) option")
    parser.add_argument('--param-key', choices=['params_ema', 'params'],
                        help='state dict inside a BasicSR checkpoint (default: params_ema when present)')
    parser.add_argument('--batch-size', type=int, default=8, help='images per forward pass (default: %(default)s)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                        help='auto: cuda when available (default: %(default)s)')
    parser.add_argument('--size', type=int, metavar='N',
                        help='resize every input to NxN with PIL bicubic first (e.g. 16 for x8 faces)')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write <stem>_sbs.png: [bicubic-upsampled LR | SR]')
    parser.add_argument('--max-input-side', type=int, default=128, metavar='N',
                        help='refuse (after --size) inputs with a side above N: a photo instead of an LR face would '
                             'make a huge SR image (default: %(default)s)')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 if any input file is bad')
    return parser


def architecture(options):
    """The class registered for ``options['type']``."""
    try:
        return ARCH_REGISTRY.get(options['type'])
    except KeyError as error:
        raise InferError(f"network_g type {options['type']!r} is not a registered BasicSR architecture.") from error


def apply_scale(options, scale):
    """Set the network's factor: the ``upscale``/``scale`` key it has, else the one its constructor takes."""
    names = [name for name in SCALE_OPTION_NAMES if name in options]
    if not names:
        parameters = inspect.signature(architecture(options)).parameters
        names = [name for name in SCALE_OPTION_NAMES if name in parameters]
    if not names:
        raise InferError(f"--scale: network_g type {options['type']!r} has no upscale or scale option.")
    options[names[0]] = scale


def network_options(args) -> dict:
    """``network_g`` from ``--opt`` / ``--arch-json`` / the default, with ``--scale`` applied."""
    if args.opt:
        try:
            options = load_merged_options(args.opt).get('network_g')
        except (OSError, ValueError) as error:
            raise InferError(f'cannot read option file {args.opt}: {error}') from error
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
        options = DEFAULT_NETWORK
    options = dict(options)
    if 'type' not in options:
        raise InferError(f'network_g {options} has no type (e.g. "SFMNet").')
    if args.scale is not None:
        apply_scale(options, args.scale)
    return options


def load_state_dict(path, param_key, keep_unused_attention) -> dict:
    """The state dict in ``path``; official SFMNet checkpoints are converted to the plugin's names on the fly."""
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
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        raise InferError(f'checkpoint {path} holds no state dict (a mapping of parameter names to tensors).')
    state_dict = strip_module_prefix(state_dict)
    if is_official_state_dict(state_dict):
        try:
            state_dict = convert_official_state_dict(state_dict, keep_unused_attention=keep_unused_attention)
        except CheckpointConversionError as error:
            raise InferError(f'official checkpoint {path} could not be converted: {error}') from error
    return state_dict


def _sfmnet_options_of(state_dict) -> dict:
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
    """Load strictly; on a mismatch raise an error naming a few offending keys (for SFMNet: the differing options)."""
    network_sd = model.state_dict()
    expected = {key: tuple(t.shape) for key, t in network_sd.items()}
    missing, unexpected = set(expected) - set(state_dict), set(state_dict) - set(expected)
    mismatched = [f'{key} {tuple(state_dict[key].shape)} vs {expected[key]}'
                  for key in sorted(set(expected) & set(state_dict)) if tuple(state_dict[key].shape) != expected[key]]
    if not (missing or unexpected or mismatched):
        model.load_state_dict(state_dict, strict=True)
        return
    lines = [format_keys(title, keys, limit=3) for title, keys in
             [('missing keys', missing), ('unexpected keys', unexpected),
              ('shape mismatches (checkpoint vs network)', mismatched)] if keys]
    sfmnet_key = 'spatial_branch.head.conv.weight'
    if sfmnet_key in state_dict and sfmnet_key in network_sd:  # both SFMNet: name the options that differ
        ours, theirs = _sfmnet_options_of(network_sd), _sfmnet_options_of(state_dict)
        if theirs['num_levels'] != ours['num_levels']:
            del ours['fusion_positions']  # follows from num_levels: naming it too would only add noise
        lines += [f'the checkpoint has {name} {theirs[name]} but the network has {ours[name]}'
                  for name in ours if theirs[name] != ours[name]]
    raise InferError(f'checkpoint {path} does not fit network_g {options}:\n  ' + '\n  '.join(lines)
                     + '\nSet the matching network_g options with --opt or --arch-json.')


def build_model(args):
    """The network of ``network_g`` with the checkpoint's weights, in eval mode, and its options."""
    options = network_options(args)
    architecture(options)  # an unknown type: our error rather than BasicSR's KeyError
    try:
        model = build_network(dict(options))
    except (TypeError, ValueError) as error:
        raise InferError(f'cannot build network_g {options}: {error}') from error
    state_dict = load_state_dict(args.checkpoint, args.param_key, options.get('keep_unused_attention', True))
    load_weights(model, state_dict, args.checkpoint, options)
    return model.eval(), options


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
    """RGB PIL image of ``path``, resized to ``size`` x ``size`` with PIL bicubic when ``size`` is given.

    The preparation scripts' decoder (16-bit PNGs rescaled, not clipped to white; alpha composited over white).
    """
    image, _ = read_rgb_image(path)
    if size is not None:
        image = image.resize((size, size), Image.BICUBIC)
    return image


def declared_scale(options):
    """The factor network_g states, or its constructor's default; None if it has neither."""
    for name in SCALE_OPTION_NAMES:
        if name in options:
            return options[name]
    parameters = inspect.signature(architecture(options)).parameters
    defaults = [parameters[name].default for name in SCALE_OPTION_NAMES if name in parameters]
    return defaults[0] if defaults and isinstance(defaults[0], int) else None


def size_hint(scale):
    return f'use --size {max(FACE_SIZE // scale, 1)} for {FACE_SIZE}-px faces' if scale else 'resize it with --size'


def read_inputs(args, scale, bad):
    """``{(width, height): [(path, stem, image)]}`` of the usable inputs; the others are added to ``bad``.

    Everything is read first (LR faces are small) so that same-sized images can share batches.
    """
    groups, output_names = {}, {}
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
        if max(image.size) > args.max_input_side:
            bad.append((path, f'wrong size: {image.width}x{image.height} is larger than an LR face '
                              f'(--max-input-side {args.max_input_side}); {size_hint(scale)}'))
            continue
        output_names[stem] = path
        groups.setdefault(image.size, []).append((path, stem, image))
    return groups


def choose_device(name):
    if name == 'cuda' and not torch.cuda.is_available():
        raise InferError('--device cuda was requested but CUDA is not available.')
    return torch.device('cuda' if name == 'cuda' or (name == 'auto' and torch.cuda.is_available()) else 'cpu')


def super_resolve(model, lr, options):
    """SR of a batch; the first output when the network returns several (BasicSR's convention)."""
    sr = model(lr)
    if isinstance(sr, (tuple, list)):
        sr = sr[0]
    if not isinstance(sr, torch.Tensor) or sr.dim() != 4 or sr.shape[1] != 3:
        raise InferError(f"network_g type {options['type']!r} did not return a B x 3 x H x W image tensor.")
    return sr


def output_scale(lr, sr, options):
    """The integer factor between ``lr`` and ``sr`` (the same along both axes), or an error."""
    (height, width), (sr_height, sr_width) = lr.shape[-2:], sr.shape[-2:]
    if sr_height % height or sr_width % width or sr_height // height != sr_width // width:
        raise InferError(f"network_g {options} turned a {width}x{height} input into {sr_width}x{sr_height}: "
                         'not an integer upscale.')
    return sr_height // height


def process(model, options, groups, args, device, bad):
    """Run every size group through the network in batches and write the PNGs; returns how many were written."""
    written = 0
    with tqdm(total=sum(map(len, groups.values())), unit='img', disable=None) as progress, torch.inference_mode():
        for (width, height), items in sorted(groups.items()):
            for start in range(0, len(items), args.batch_size):
                batch = items[start:start + args.batch_size]
                lr = torch.stack(img2tensor([np.asarray(image, dtype=np.float32) / 255. for _, _, image in batch],
                                            bgr2rgb=False)).to(device)
                try:
                    sr = super_resolve(model, lr, options).cpu()
                except (RuntimeError, ValueError, AssertionError) as error:
                    # The network cannot take this size (e.g. SFMNet's HR must be divisible by 2 ** num_levels):
                    # every image of the group has it, so report them all and go on with the next size.
                    bad += [(path, f'wrong size: network_g type {options["type"]!r} cannot take a {width}x{height} '
                                   f'input ({error}); {size_hint(declared_scale(options))}')
                            for path, _, _ in items[start:]]
                    progress.update(len(items) - start)
                    break
                scale = output_scale(lr, sr, options)
                for (_, stem, image), sr_image in zip(batch, sr):
                    sr_bgr = tensor2img(sr_image, rgb2bgr=True, min_max=(0, 1))  # clamps, rounds to uint8
                    imwrite(sr_bgr, osp.join(args.output, f'{stem}.png'))
                    if args.side_by_side:
                        bicubic = image.resize((width * scale, height * scale), Image.BICUBIC)
                        side_by_side = np.concatenate([np.asarray(bicubic)[..., ::-1], sr_bgr], axis=1)
                        imwrite(side_by_side, osp.join(args.output, f'{stem}_sbs.png'))
                    written += 1
                progress.update(len(batch))
    return written


def check_output_folder(args):
    """Refuse an ``--output`` that is a file, an input folder, or would receive a file over an input image."""
    output = osp.realpath(args.output)
    if osp.exists(output) and not osp.isdir(output):
        raise InferError(f'--output {args.output}: is a file, not a folder; choose a folder for the SR images.')
    inputs = collect_inputs(args.inputs, [])
    for folder in [item for item in args.inputs if osp.isdir(item)]:
        if osp.realpath(folder) == output:
            raise InferError(f'--output {args.output} is the input folder {folder}: the SR images would be written '
                             'over or among the inputs; choose another folder.')
    input_files = {osp.realpath(path): path for path in inputs}
    for path in inputs:
        stem = osp.splitext(osp.basename(path))[0]
        for name in (f'{stem}.png', f'{stem}_sbs.png'):
            if osp.join(output, name) in input_files:
                raise InferError(f'--output {args.output}: writing {name} would overwrite the input '
                                 f'{input_files[osp.join(output, name)]}; choose another folder.')


def run(args) -> int:
    check_output_folder(args)
    model, options = build_model(args)
    device = choose_device(args.device)
    model = model.to(device)
    bad = []
    groups = read_inputs(args, declared_scale(options), bad)
    try:
        os.makedirs(args.output, exist_ok=True)
        written = process(model, options, groups, args, device, bad)
    except OSError as error:  # read-only or full disk: BasicSR's imwrite names no file
        raise InferError(f'cannot write the SR images to {args.output}: '
                         f'{error.strerror or error} (is the disk full or the folder read-only?)') from error

    print(f'Wrote {written} SR image(s) to {args.output}.')
    if bad:
        print(f'{len(bad)} input(s) skipped:', file=sys.stderr)
        for path, reason in bad:
            print(f'  {path}: {reason}', file=sys.stderr)
    return 0 if written and not (args.strict and bad) else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.size is not None and args.size < 1) or args.max_input_side < 1:
        print('sfmnet-infer: error: --batch-size, --size and --max-input-side must be positive.', file=sys.stderr)
        return 1
    try:
        return run(args)
    except InferError as error:
        print(f'sfmnet-infer: error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
