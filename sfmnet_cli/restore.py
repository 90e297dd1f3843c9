"""``sfmnet-restore``: restore every face in ordinary photos (SPARNetHD, or any face network of the family).

Usage::

    sfmnet-restore PHOTO_OR_FOLDER... --output DIR --checkpoint CKPT [--opt options/x.yml | --arch-json '{...}']
                   [--scale S] [--param-key params_ema|params] [--device auto|cpu|cuda] [--face-size N]
                   [--upscale U] [--min-score P] [--min-face-side N] [--max-face-enlargement X]
                   [--max-face-shrink X] [--batch-size N] [--no-before-after] [--save-faces] [--niqe] [--strict]
                   [--second-pass report|restore|off]

Each photo's faces are detected (MTCNN, ``facenet-pytorch``), aligned to the FFHQ five-point template, restored by
the network and pasted back with a soft mask (:class:`sfmnet_plugin.inference.whole_photo.WholePhotoRestorer`, on top
of :class:`sfmnet_plugin.inference.FaceRestorer`). Written to DIR: ``<stem>.png`` (the restored photo, ``--upscale``
times the input) and ``<stem>_before_after.png`` ([input | restored]); with ``--save-faces`` also
``<stem>_face<i>_input.png`` / ``_restored.png`` (the network's aligned input and output); with ``--niqe`` also
``niqe.csv``, the no-reference NIQE of every restored face before (its aligned input, bicubic-enlarged to the
output size) and after (lower is better; faces of at least 192x96 pixels). Every file is written atomically.
Photos are decoded as ``sfmnet-infer`` decodes its inputs (:func:`sfmnet_plugin.data.image_io.read_photo`:
alpha composited over white, 16-bit scaled to 8 bits), and turned upright by their EXIF orientation.

The network defaults to the checkpoint's own: the ``network_g`` saved with a checkpoint the plugin wrote, or an
official checkpoint's network (e.g. the released SPARNetHD ``net_H``); name it with ``--opt`` (e.g.
``options/train_SPARNetHD_x1.yml``) or ``--arch-json``. Every face is listed by photo: restored, or left as it is
and why (the detector unsure of it, too small to restore, too large for the network's face size or input size).
A second, more sensitive detection pass (MTCNN with lower thresholds on the photo enlarged 2x) looks for faces the
first missed: they are listed as possible faces, with position, size and score, and counted, but not restored
(some are not faces); ``--second-pass restore`` treats them as the first pass's faces (``--min-score`` and the size
limits decide), ``--second-pass off`` skips the pass. Unreadable
photos and photos that cannot be processed (e.g. a few pixels wide) are reported and the rest processed. Every
output is planned and checked by the plugin's output guard before the network is loaded: an output over an input
photo, two photos with one output name (``a.png`` and ``a.jpg``), a link under an output name and an ``--output``
that is or holds an input are refused in one line. Exit
status: 0 if at least one photo was written (and, with ``--strict``, nothing was skipped), otherwise 1.
"""
import sys

from sfmnet_cli.arguments import add_device_argument, add_inputs_and_output, add_network_arguments, tool_parser
from sfmnet_cli.dispatch import run_tool

SECOND_PASS_MODES = ('report', 'restore', 'off')  # the library's, checked by tests/cli/test_cli_choices.py
MAX_UPSCALE = 16  # a photo enlarged more is mostly interpolation, and its size grows with the square


def build_parser():
    parser = tool_parser('sfmnet-restore', __doc__)
    add_inputs_and_output(parser, 'PHOTO', 'photos and/or folders of photos',
                          'folder for the restored photos (created if needed)')
    add_network_arguments(parser, example='{"type": "SPARNetHD"}')
    add_device_argument(parser)
    parser.add_argument('--face-size', type=int,
                        help="side of the restored aligned face (default: the network's out_size, 512 for "
                             'SPARNetHD, else 128)')
    parser.add_argument('--upscale', type=int, default=1, help='output photo size / input size (default: 1)')
    parser.add_argument('--min-score', type=float, default=0.9,
                        help='skip faces the detector scores lower (default: %(default)s)')
    parser.add_argument('--min-face-side', type=float, default=16,
                        help='skip faces whose aligned crop spans fewer photo pixels (default: %(default)s)')
    parser.add_argument('--max-face-enlargement', type=float, default=2.0,
                        help='skip faces for which the restored face would be enlarged more than this when pasted '
                             'back (default: %(default)s)')
    parser.add_argument('--max-face-shrink', type=float, default=None,
                        help="leave faces that would be shrunk more than this to the network's input size before "
                             'restoration as they are (default: 1 for a super-resolution network, whose output '
                             'would be blurrier than the face in the photo; 2 for a scale-1 restoration network)')
    parser.add_argument('--batch-size', type=int, default=4, help='faces per forward pass (default: %(default)s)')
    parser.add_argument('--no-before-after', action='store_true', help='do not write <stem>_before_after.png')
    parser.add_argument('--save-faces', action='store_true',
                        help="also write every face's aligned input and restored crop")
    parser.add_argument('--niqe', action='store_true',
                        help="report every restored face's NIQE before and after (niqe.csv; no ground truth needed)")
    parser.add_argument('--strict', action='store_true', help='exit with status 1 if any photo or face was skipped')
    parser.add_argument('--second-pass', choices=SECOND_PASS_MODES, default='report',
                        help='a second, more sensitive face detection (MTCNN, lower thresholds, photo enlarged 2x) '
                             'for faces the first misses: report them as possible faces and leave them as they '
                             'are (report, the default: some are not faces), restore them like the first pass\'s '
                             'faces (restore: --min-score and the size limits decide), or do not run it (off)')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    args = build_parser().parse_args(argv)
    if not 1 <= args.upscale <= MAX_UPSCALE:
        print(f'sfmnet-restore: error: --upscale {args.upscale}: expected 1 to {MAX_UPSCALE} (the restored photo is '
              '--upscale times the input on each side).', file=sys.stderr)
        return 1
    return run_tool('restore', args, 'sfmnet-restore')


if __name__ == '__main__':
    sys.exit(main())
