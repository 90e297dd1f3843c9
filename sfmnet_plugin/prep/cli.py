"""Command-line plumbing shared by the preparation scripts: common options, list files, error reporting."""
import argparse
import os
import sys
from os import path as osp

from sfmnet_plugin.data.downsample import DOWNSAMPLERS
from sfmnet_plugin.prep.outputs import NotOurOutputError
from sfmnet_plugin.prep.pipeline import DataPrepError, SampleSpec


def read_text_lines(path):
    """The lines of a text file; a missing file is a DataPrepError naming it."""
    if not osp.isfile(path):
        raise DataPrepError(f'File not found: {path}')
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read().splitlines()


def read_name_list(path):
    """Image names of a split list (first token of each non-blank line) -> their line numbers.

    Lists such as FSRNet's ``fileList_*.txt`` or DIC's test lists give one file name per line;
    extra columns are ignored.
    """
    names = {}
    for line_no, line in enumerate(read_text_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] in names:
            raise DataPrepError(f'{path}, line {line_no}: {tokens[0]} is listed twice '
                                f'(first on line {names[tokens[0]]}).')
        names[tokens[0]] = line_no
    if not names:
        raise DataPrepError(f'{path}: the list is empty.')
    return names


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


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
    parser.add_argument('--workers', type=positive_int, default=os.cpu_count() or 1,
                        help='worker processes for decoding/cropping/encoding (default: all cores, %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='rebuild splits that already exist')


def spec_from_args(args):
    """The SampleSpec of parsed ``add_output_arguments`` options."""
    return SampleSpec(hr_size=args.hr_size, scales=tuple(sorted(set(args.scales))), downsampler=args.downsampler,
                      min_crop_size=args.min_crop_size)


def describe_os_error(err):
    """``<path>: <cause>`` for an OSError that names a path (``[Errno 13] Permission denied: 'x'`` otherwise)."""
    if err.filename and err.strerror:
        return f'{err.filename}: {err.strerror}'
    return str(err)


def run_cli(main_function, argv):
    """Run a script's main and return its exit code.

    DataPrepError, ValueError and OSError (a missing, read-only or full output, a file where a
    folder is expected, an output the tools did not create) become one ``error: ...`` line naming
    the path, and exit code 2; Ctrl-C becomes a one-line message and exit code 130.
    """
    try:
        return main_function(argv)
    except (DataPrepError, ValueError, NotOurOutputError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except OSError as err:
        print(f'error: {describe_os_error(err)}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted: the unfinished output was removed; completed outputs are kept.', file=sys.stderr)
        return 130
