"""What the console scripts share: argument sets, input listing and the end-of-run report.

Every tool imports these from here, never from a sibling tool, so a tool can change without
breaking another. The preparation scripts' argument set (output place, sizes, LR method, workers)
and their error handling are here too.
"""
import argparse
import json
import os
import sys
from collections.abc import Callable
from os import path as osp

from sfmnet_plugin.data.downsample import DOWNSAMPLERS
from sfmnet_plugin.data.image_io import IMAGE_EXTENSIONS, why_not_a_file
from sfmnet_plugin.inference import InferenceError
from sfmnet_plugin.inference.network_options import network_options_from_file
from sfmnet_plugin.prep.split_writer import DataPrepError, SampleSpec
from sfmnet_plugin.utils.error_boundary import console_script
from sfmnet_plugin.utils.process_settings import apply_process_settings


def tool_parser(prog, description):
    """The parser of a console script whose module docstring (``description``) is its manual."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_inputs_and_output(parser, metavar, inputs_help, output_help):
    """Positional image files and/or folders (see :func:`collect_inputs`) and the ``--output`` folder."""
    parser.add_argument('inputs', nargs='+', metavar=metavar, help=inputs_help)
    parser.add_argument('--output', required=True, help=output_help)


def add_network_arguments(parser, example='{"type": "SFMNet", "num_feat": 32}'):
    """The options every tool that loads a network shares: checkpoint, network_g source, scale, state-dict key."""
    parser.add_argument('--checkpoint', required=True,
                        help='BasicSR checkpoint (.pth or .safetensors), state dict or official SFMNet/SPARNet-family '
                             'one')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='BasicSR option file whose network_g is used (default: the network_g saved '
                         'with the checkpoint)')
    network.add_argument('--arch-json', help=f"network_g as JSON, e.g. '{example}'")
    parser.add_argument('--scale', type=int, help="upscale factor: sets network_g's upscale (or scale) option")
    parser.add_argument('--param-key', choices=['params_ema', 'params'],
                        help='state dict inside a BasicSR checkpoint (default: params_ema when present)')


def add_device_argument(parser, help_text='auto: cuda when available (default: %(default)s)'):
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto', help=help_text)


def network_options(args):
    """``network_g`` from ``--opt`` / ``--arch-json`` / the default (None)."""
    if args.opt:
        return network_options_from_file(args.opt)
    if args.arch_json:
        try:
            options = json.loads(args.arch_json)
        except json.JSONDecodeError as error:
            raise InferenceError(f'--arch-json is not valid JSON: {error}') from error
        if not isinstance(options, dict):
            raise InferenceError('--arch-json must be a JSON object such as {"type": "SFMNet", "upscale": 8}.')
        return options
    return None


def collect_inputs(inputs, bad):
    """Image paths from files and folders (non-recursive, sorted). Everything skipped is added to ``bad`` with its
    reason: a missing path, and every entry with an image name that is not a regular file (a dangling link, a link
    loop, a link to a device, a FIFO...)."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            for name in sorted(os.listdir(item)):
                if not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                path = osp.join(item, name)
                reason = why_not_a_file(path)
                if reason is None:
                    paths.append(path)
                else:
                    bad.append((path, f'{reason}: skipped'))
        else:
            reason = why_not_a_file(item)  # named explicitly: tried whatever its extension
            if reason is None:
                paths.append(item)
            else:
                bad.append((item, reason if reason == 'not found' else f'{reason}: skipped'))
    return paths


def input_labels(inputs):
    """``[(label, path)]`` of the command line's inputs for :class:`~sfmnet_plugin.utils.output_guard.OutputPlan`."""
    return [('input folder' if osp.isdir(item) else 'input', item) for item in inputs]


def report(summary, written, bad, skipped_noun, strict) -> int:
    """Print the summary line and every skipped item with its reason; the exit status: 0 if something was
    written (and, with ``strict``, nothing was skipped), otherwise 1."""
    print(summary)
    if bad:
        print(f'{len(bad)} {skipped_noun} skipped:', file=sys.stderr)
        for what, reason in bad:
            print(f'  {what}: {reason}', file=sys.stderr)
    return 0 if written and not (strict and bad) else 1


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


def add_workers_argument(parser, what='worker processes'):
    parser.add_argument('--workers', type=positive_int, default=os.cpu_count() or 1,
                        help=f'{what} (default: all cores, %(default)s)')


def add_output_arguments(parser, default_out, default_out_text=None, hr_size=128, scales=(4, 8, 16),
                         min_crop_size=64, min_crop_size_text=None):
    """The options every preparation script shares: output place, sizes, LR method, workers, safety.

    ``hr_size``, ``scales`` and ``min_crop_size`` are the script's defaults (FFHQ: 512, none, 512: never an
    upscaled "HR" face). The ``*_text`` arguments describe defaults that the script resolves later.
    """
    parser.add_argument('--out', default=default_out,
                        help='output root; each split goes to OUT/<split>/ '
                             f'(default: {default_out_text or default_out})')
    parser.add_argument('--hr-size', type=positive_int, default=hr_size,
                        help='HR side in pixels (default: %(default)s)')
    parser.add_argument('--scales', type=positive_int, nargs='+', default=list(scales),
                        help='LR scales, one LR_x<s>.lmdb each (default: %(default)s)')
    parser.add_argument('--downsampler', choices=sorted(DOWNSAMPLERS), default='pil_bicubic',
                        help='how LR images are made from the HR (default: pil_bicubic, the DIC/SFMNet protocol)')
    parser.add_argument('--min-crop-size', type=int, default=min_crop_size,
                        help='skip faces whose crop in the source photo is smaller than this many pixels '
                             f'(default: {min_crop_size_text or min_crop_size})')
    parser.add_argument('--save-png', action='store_true',
                        help='also write PNG folders in the official SFMNet layout '
                             '(HR/, LR_x4_bicubic/, LR_bicubic/ for x8, LR_x16_bicubic/)')
    parser.add_argument('--landmarks', type=int, choices=[68], default=None,
                        help="also store dlib's 68 landmarks of every HR face in HR.lmdb/landmarks_68.txt (DIC's "
                             'heatmap loss; needs the face-metrics extra); faces where dlib finds no face are listed '
                             'in landmarks_68_missing.txt')
    add_workers_argument(parser, 'worker processes for decoding/cropping/encoding')
    parser.add_argument('--overwrite', action='store_true', help='rebuild splits that already exist')


def spec_from_args(args):
    """The SampleSpec of parsed ``add_output_arguments`` options."""
    return SampleSpec(hr_size=args.hr_size, scales=tuple(sorted(set(args.scales))), downsampler=args.downsampler,
                      min_crop_size=args.min_crop_size, landmarks=args.landmarks)


def run_prep_tool(main_function: Callable[[list[str] | None], int], argv: list[str] | None) -> int:
    """Apply the process settings of the plugin's entry points, run a preparation script's main, return its exit code.

    The plugin's error boundary (:func:`sfmnet_plugin.utils.error_boundary.console_script`): DataPrepError,
    ValueError and every OSError or output-guard refusal (a missing, read-only or full output, a file where a
    folder is expected, an output the tools did not create, an output another run is building) become one
    ``error: ...`` line naming the path, and exit code 2; Ctrl-C becomes a one-line message and exit code 130.
    """
    apply_process_settings()
    return console_script(None, user_errors=(DataPrepError, ValueError), status=2)(main_function)(argv)
