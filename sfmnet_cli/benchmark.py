"""``sfmnet-benchmark``: compare face-SR methods on one test set with the same metric code.

Usage::

    sfmnet-benchmark --gt HR(.lmdb|folder) [--lq LR(.lmdb|folder)] [--scale 8] --output DIR
                     [--bicubic [NAME]] [--network NAME CHECKPOINT [OPTION_FILE]]... [--folder NAME SR_DIR]...
                     [--metrics sfmnet sparnet dic lpips identity nme identity_arcface niqe fid]
                     [--lpips-weights alexnet-owt-7be5be79.pth] [--arcface-onnx arcface.onnx]
                     [--pairs pairs.txt [--recognizer dlib|arcface]]
                     [--fid-reference DIR|LMDB|STATS.npz] [--fid-weights pt_inception-2015-12-05-6726825d.pth]
                     [--device auto|cpu|cuda] [--latency-repeats N] [--sheet-images N] [--overwrite]

Methods appear in the table in the order given. ``--network`` takes a BasicSR checkpoint (or an official one) and
the option file whose ``network_g`` it was trained with (default: the ``network_g`` saved with a checkpoint the
plugin wrote, or an official checkpoint's network, at ``--scale``); ``--folder`` takes SR
images written by any code, named like the HR images. Writes ``table.md``, ``table.csv``, ``per_image.csv``,
``contact_sheet.png`` and ``quality_vs_cost.png`` into DIR (see ``sfmnet_plugin.benchmark.run``); with ``--pairs``
(LFW ``pairs.txt``, a CSV ``image_a,image_b,same`` or YTF ``splits.txt``) also the face verification columns,
``roc.png`` and ``pair_scores.csv`` (see ``docs/face_recognition_eval.md``). The output folder goes through the
plugin's output guard: it may not be, or directly hold, an input (the test set, an SR folder, a checkpoint...),
and a link under an output name is refused. Method names ``HR`` and ``LR`` are reserved, ``Bicubic`` for the
bicubic baseline.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_device_argument, tool_parser
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.benchmark.ALL_METRICS
ALL_METRICS = ('sfmnet', 'sparnet', 'dic', 'lpips', 'identity', 'nme', 'identity_arcface', 'niqe', 'fid')


class _AppendMethod(argparse.Action):
    """Collect --bicubic / --network / --folder into one list, keeping the command line's order."""

    def __call__(self, parser, namespace, values, option_string=None):
        values = values if isinstance(values, list) else [values]
        if option_string == '--network' and len(values) not in (2, 3):
            parser.error('--network takes NAME CHECKPOINT [OPTION_FILE].')
        methods = getattr(namespace, 'methods', None) or []
        methods.append((option_string, [v for v in values if v is not None]))
        namespace.methods = methods


def build_parser():
    parser = tool_parser('sfmnet-benchmark', __doc__)
    data = parser.add_argument_group('test set')
    data.add_argument('--gt', required=True, help='HR images: an LMDB (*.lmdb) or a folder')
    data.add_argument('--lq', help='LR images with the same names (default: made from the HR by --downsampler)')
    data.add_argument('--scale', type=int, default=8, help='HR size / LR size (default: %(default)s)')
    data.add_argument('--downsampler', choices=['pil_bicubic', 'matlab_bicubic'], default='pil_bicubic',
                      help='how the LR is made when --lq is not given (default: %(default)s)')
    data.add_argument('--name', help='test set name in the table (default: the --gt folder name)')
    methods = parser.add_argument_group('methods (at least one; table order = command-line order)')
    methods.add_argument('--bicubic', nargs='?', const='Bicubic', action=_AppendMethod, metavar='NAME',
                         help='the bicubic baseline (PIL bicubic)')
    methods.add_argument('--network', nargs='+', action=_AppendMethod, metavar='ARG',
                         help='NAME CHECKPOINT [OPTION_FILE]: a registered network and its weights')
    methods.add_argument('--folder', nargs=2, action=_AppendMethod, metavar=('NAME', 'SR_DIR'),
                         help='SR images made by other code, named like the HR images')
    parser.add_argument('--metrics', nargs='+', choices=ALL_METRICS, metavar='METRIC',
                        help=f'metric groups among {", ".join(ALL_METRICS)} (default: sfmnet sparnet dic lpips '
                             'identity nme, leaving out with a note those that cannot run here)')
    parser.add_argument('--lpips-weights', help='local torchvision AlexNet weights for LPIPS')
    parser.add_argument('--arcface-onnx', help='local ArcFace-style ONNX model for identity_arcface')
    parser.add_argument('--landmarks', choices=['dlib', 'dic'], default='dlib',
                        help="landmark detector of metric nme: dlib's 68-point model (face-metrics extra) or a "
                             "trained DIC's hourglass (--landmark-checkpoint) (default: %(default)s)")
    parser.add_argument('--landmark-checkpoint', help='with --landmarks dic: a DIC checkpoint (plugin or official) '
                                                      'or the official FB_HG_68_CelebA.pth')
    evaluation = parser.add_argument_group('face verification and FID')
    evaluation.add_argument('--pairs', help="verification pairs naming test images: LFW's pairs.txt, a CSV "
                                            "image_a,image_b,same[,fold] or YTF's splits.txt")
    evaluation.add_argument('--recognizer', choices=['dlib', 'arcface'], default='dlib',
                            help='recognition network for --pairs (arcface needs --arcface-onnx; default: %(default)s)')
    evaluation.add_argument('--fid-reference', help='reference for metric fid: image folder, LMDB or .npz statistics '
                                                    '(default: the --gt images)')
    evaluation.add_argument('--fid-weights', help='local FID Inception weights pt_inception-2015-12-05-6726825d.pth')
    parser.add_argument('--output', required=True, help='folder for the results (created)')
    parser.add_argument('--overwrite', action='store_true', help='replace the results of an earlier benchmark there')
    add_device_argument(parser, 'where networks run (default: %(default)s)')
    parser.add_argument('--latency-repeats', type=int, default=5,
                        help='timed batch-1 forward passes per network, 0 to skip (default: %(default)s)')
    parser.add_argument('--sheet-images', type=int, default=4,
                        help='rows of the contact sheet, 0 for none (default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.latency_repeats < 0 or args.sheet_images < 0 or args.scale < 1:
        parser.error('--scale must be positive, --latency-repeats and --sheet-images not negative.')
    if (args.landmarks == 'dic') != bool(args.landmark_checkpoint):
        parser.error('--landmarks dic and --landmark-checkpoint go together (the checkpoint holds the detector).')
    return run_tool('benchmark', args, 'sfmnet-benchmark')


if __name__ == '__main__':
    sys.exit(main())
