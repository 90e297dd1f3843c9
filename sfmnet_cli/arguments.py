"""What the console scripts' command lines share: argument sets, argument types, the launchers' options.

Standard library only: every parser is built and run before the library is imported. The choices that the
library defines are literals here and in the tools' modules; ``tests/cli/test_cli_choices.py`` checks each
against the library's value.
"""
import argparse
import os
import sys

# sfmnet_plugin.data.downsample.DOWNSAMPLERS
DOWNSAMPLERS = ('matlab_bicubic', 'pil_bicubic')


def tool_parser(prog: str | None, description: str | None, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of a console script whose module docstring (``description``) is its manual."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_inputs_and_output(parser: argparse.ArgumentParser, metavar: str, inputs_help: str, output_help: str) -> None:
    """Positional image files and/or folders and the ``--output`` folder."""
    parser.add_argument('inputs', nargs='+', metavar=metavar, help=inputs_help)
    parser.add_argument('--output', required=True, help=output_help)


def add_network_arguments(parser: argparse.ArgumentParser, example: str = '{"type": "SFMNet", "num_feat": 32}') -> None:
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


def add_device_argument(parser: argparse.ArgumentParser,
                        help_text: str = 'auto: cuda when available (default: %(default)s)') -> None:
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto', help=help_text)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


def existing_file(text: str) -> str:
    """argparse type: the path of a file that exists (checked before the tool's work, not when first read)."""
    if not os.path.isfile(os.path.expanduser(text)):
        raise argparse.ArgumentTypeError(f'no file at {text}')
    return text


def existing_output(prog: str, path: str, overwrite_flag: str | None = None) -> bool:
    """Say (one line) and return True when ``path`` exists (a dangling link too) and is not to be replaced: checked
    before the library loads, so the refusal takes no start-up time."""
    if not os.path.lexists(path):
        return False
    fix = f'choose another output path or pass {overwrite_flag}' if overwrite_flag else \
        'choose another output path (nothing is overwritten)'
    print(f'{prog}: error: {path} already exists; {fix}.', file=sys.stderr)
    return True


def add_workers_argument(parser: argparse.ArgumentParser, what: str = 'worker processes') -> None:
    parser.add_argument('--workers', type=positive_int, default=os.cpu_count() or 1,
                        help=f'{what} (default: all cores, %(default)s)')


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str | None, default_out_text: str | None = None,
                         hr_size: int = 128, scales: tuple[int, ...] = (4, 8, 16), min_crop_size: int = 64,
                         min_crop_size_text: str | None = None) -> None:
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
    add_landmarks_argument(parser, 'every HR face in HR.lmdb/landmarks_68.txt')
    add_workers_argument(parser, 'worker processes for decoding/cropping/encoding')
    parser.add_argument('--overwrite', action='store_true', help='rebuild splits that already exist')


def add_landmarks_argument(parser: argparse.ArgumentParser, where: str) -> None:
    """``--landmarks 68``: dlib's 68 landmarks of every face stored for DIC's heatmap loss (``where`` says where)."""
    parser.add_argument('--landmarks', type=int, choices=[68], default=None,
                        help=f"also store dlib's 68 landmarks of {where} (DIC's heatmap loss; needs the "
                             'face-metrics extra); faces where dlib finds no face are listed in '
                             'landmarks_68_missing.txt')
