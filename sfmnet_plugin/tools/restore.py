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
import csv
import sys
from os import path as osp

from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import read_photo, write_png
from sfmnet_plugin.faces.detect import DetectorUnavailable, MtcnnDetector
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.whole_photo import POSSIBLE_FACE, SECOND_PASS_MODES, PhotoError, WholePhotoRestorer
from sfmnet_plugin.metrics.no_reference import niqe_before_after
from sfmnet_plugin.tools import common
from sfmnet_plugin.utils.atomic import atomic_write
from sfmnet_plugin.utils.error_boundary import console_script
from sfmnet_plugin.utils.output_guard import OutputPlan
from sfmnet_plugin.utils.output_paths import OutputPathError

MAX_UPSCALE = 16  # a photo enlarged more is mostly interpolation, and its size grows with the square


def build_parser():
    parser = common.tool_parser('sfmnet-restore', __doc__)
    common.add_inputs_and_output(parser, 'PHOTO', 'photos and/or folders of photos',
                          'folder for the restored photos (created if needed)')
    common.add_network_arguments(parser, example='{"type": "SPARNetHD"}')
    common.add_device_argument(parser)
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
    # The second detection pass (every argument it adds is in this block).
    parser.add_argument('--second-pass', choices=SECOND_PASS_MODES, default='report',
                        help='a second, more sensitive face detection (MTCNN, lower thresholds, photo enlarged 2x) '
                             'for faces the first misses: report them as possible faces and leave them as they '
                             'are (report, the default: some are not faces), restore them like the first pass\'s '
                             'faces (restore: --min-score and the size limits decide), or do not run it (off)')
    return parser


def output_names(stem, args):
    """The files written for one photo (``--save-faces`` crops are checked as they come: their count is known only
    after detection)."""
    return [f'{stem}.png'] + ([] if args.no_before_after else [f'{stem}_before_after.png'])


def plan_outputs(args, paths):
    """The output guard's plan of every photo's files and ``niqe.csv``, checked before anything is loaded or written:
    an output over an input photo, two photos with one output name, a link under an output name and an
    ``--output`` that is or holds an input are refused."""
    plan = OutputPlan(args.output, common.input_labels(args.inputs) + [('input photo', path) for path in paths])
    for path in paths:
        for name in output_names(osp.splitext(osp.basename(path))[0], args):
            plan.add(osp.join(args.output, name), path)
    if args.niqe:
        plan.add(osp.join(args.output, 'niqe.csv'))
    return plan.check()


def restore_one(photo_restorer, path, stem, args):
    """Restore one photo and write its files: ``(PhotoResult or None when nothing was written, [(what, reason)])``."""
    try:
        image = read_photo(path)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return None, [(path, f'unreadable image: {error}')]
    try:
        result = photo_restorer.restore_photo(image)
    except PhotoError as error:
        return None, [(path, str(error))]
    targets = {f'{stem}.png': result.restored}
    if not args.no_before_after:
        targets[f'{stem}_before_after.png'] = result.before_after()
    if args.save_faces:
        for face in result.restored_faces:
            targets[f'{stem}_face{face.index}_input.png'] = face.input_crop
            targets[f'{stem}_face{face.index}_restored.png'] = face.restored
    targets = {osp.join(args.output, name): rgb for name, rgb in targets.items()}
    crops = OutputPlan(args.output, [('input photo', path)])
    for target in targets:
        crops.add(target, path)
    try:
        crops.check(writable=False)
    except OutputPathError as error:
        return None, [(path, f'not written: {error}')]
    for target, rgb in targets.items():
        write_png(target, rgb)
    skipped = [(f'{path} face {face.index}', face.skip_reason) for face in result.skipped_faces]
    if not result.faces:
        skipped.append((path, 'no face found; written unchanged'))
    return result, skipped


def run(args) -> int:
    bad: list[tuple[str, str]] = []
    paths = common.collect_inputs(args.inputs, bad)
    with plan_outputs(args, paths) as plan:
        restorer = FaceRestorer(args.checkpoint, common.network_options(args), scale=args.scale,
                                param_key=args.param_key, device=args.device)
        photo_restorer = WholePhotoRestorer(
            restorer, detector=MtcnnDetector(),  # created now: a missing package fails before anything is written
            face_size=args.face_size, upscale=args.upscale, min_score=args.min_score,
            min_face_side=args.min_face_side, max_face_enlargement=args.max_face_enlargement,
            max_face_shrink=args.max_face_shrink, batch_size=args.batch_size, second_pass=args.second_pass)
        plan.make_folder()
        written, niqe_rows = 0, []
        counts = {'restored': 0, 'left as they are': 0, 'possible face(s) not restored': 0}
        stems: dict[str, str] = {}
        for path in tqdm(paths, unit='photo', disable=None):
            stem = osp.splitext(osp.basename(path))[0]
            if stem in stems:  # a.png and a.jpg would write the same a.png
                bad.append((path, f'same output name {stem}.png as {stems[stem]}'))
                continue
            stems[stem] = path
            result, problems = restore_one(photo_restorer, path, stem, args)
            if result is not None and args.niqe:
                niqe_rows += face_niqe_rows(path, result)
            bad += problems
            if result is not None:
                written += 1
                for line in photo_report(path, result, counts):
                    tqdm.write(line)

        if args.niqe:
            write_niqe_report(osp.join(args.output, 'niqe.csv'), niqe_rows)
    faces = ', '.join(f'{count} {what}' for what, count in counts.items())
    return common.report(f'Wrote {written} restored photo(s) to {args.output}; faces: {faces}.', written, bad,
                         'photo(s) or face(s)', args.strict)


def photo_report(path, result, counts):
    """The lines that list every face of one photo: restored, left and why, possible faces of the second pass;
    adds to ``counts`` (the summary's)."""
    second = sum(face.second_pass for face in result.faces)
    found = f' ({second} by the second pass)' if second else ''
    possible = (f'; {len(result.possible_faces)} possible face(s) not restored (below the detection threshold)'
                if result.possible_faces else '')
    lines = [f'{path}: {len(result.faces)} face(s) detected{found}: {len(result.restored_faces)} restored, '
             f'{len(result.skipped_faces)} left as they are{possible}']
    for face in result.faces:
        status = 'restored' if face.skip_reason is None else f'left as it is: {face.skip_reason}'
        lines.append(f'  {describe(face)}: {status}')
    for face in result.possible_faces:
        hint = ' (--second-pass restore restores it)' if face.skip_reason == POSSIBLE_FACE else ''
        lines.append(f'  possible {describe(face)}: {face.skip_reason}{hint}')
    counts['restored'] += len(result.restored_faces)
    counts['left as they are'] += len(result.skipped_faces)
    counts['possible face(s) not restored'] += len(result.possible_faces)
    return lines


def describe(face):
    """``face 3 at (120, 48), 36 px, score 0.981``: the centre of its face box, its aligned crop's side in photo
    pixels and the detector's score (with the pass that found it)."""
    x0, y0, x1, y1 = face.box
    found = ', second pass' if face.second_pass else ''
    return (f'face {face.index} at ({(x0 + x1) / 2:.0f}, {(y0 + y1) / 2:.0f}) ({face.source_side:.0f} px, '
            f'score {face.score:.3f}{found})')


def face_niqe_rows(path, result):
    """One ``niqe.csv`` row per restored face: NIQE before and after, or why it has none (a face too small)."""
    rows = []
    for face in result.restored_faces:
        row = {'photo': path, 'face': face.index}
        try:
            row['niqe_before'], row['niqe_after'] = niqe_before_after(face.input_crop, face.restored)
        except ValueError as error:
            row['note'] = str(error)
        rows.append(row)
    return rows


def write_niqe_report(path, rows):
    """Write ``niqe.csv`` (photo, face, NIQE before and after, note) and print one line per face."""
    def write(target):
        with open(target, 'w', newline='', encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=['photo', 'face', 'niqe_before', 'niqe_after', 'note'])
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)
    for row in rows:
        scores = (f"NIQE {row['niqe_before']:.3f} -> {row['niqe_after']:.3f}" if 'niqe_after' in row
                  else f"no NIQE: {row['note']}")
        print(f"{row['photo']} face {row['face']}: {scores}")


@console_script('sfmnet-restore', user_errors=(InferenceError, DetectorUnavailable))
def main(argv: list[str] | None = None) -> int:
    from sfmnet_plugin.utils.process_settings import apply_process_settings  # process-wide: entry points only
    apply_process_settings()
    args = build_parser().parse_args(argv)
    if not 1 <= args.upscale <= MAX_UPSCALE:
        print(f'sfmnet-restore: error: --upscale {args.upscale}: expected 1 to {MAX_UPSCALE} (the restored photo is '
              '--upscale times the input on each side).', file=sys.stderr)
        return 1
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
