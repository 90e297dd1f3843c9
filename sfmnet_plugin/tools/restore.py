"""The body of ``sfmnet-restore`` (its command line and manual: :mod:`sfmnet_cli.restore`): restore every face in
ordinary photos, through the output guard, with a report of every photo or face left as it is."""
import argparse
import csv
from os import path as osp

from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import read_photo, write_png
from sfmnet_plugin.faces.detect import DetectorUnavailable, MtcnnDetector
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.whole_photo import POSSIBLE_FACE, PhotoError, WholePhotoRestorer
from sfmnet_plugin.metrics.no_reference import niqe_before_after
from sfmnet_plugin.tools import common
from sfmnet_plugin.utils.atomic import atomic_write
from sfmnet_plugin.utils.output_guard import OutputPlan
from sfmnet_plugin.utils.output_paths import OutputPathError

USER_ERRORS = (InferenceError, DetectorUnavailable)  # one line each, as the plugin's error boundary prints them


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


def restore_one(photo_restorer, path, stem, args, plan):
    """Restore one photo and write its files: ``(PhotoResult or None when nothing was written, [(what, reason)])``.
    Its face crops (``--save-faces``), named only now, join ``plan``: never over an input or another output."""
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
    crops = {}
    if args.save_faces:
        for face in result.restored_faces:
            crops[f'{stem}_face{face.index}_input.png'] = face.input_crop
            crops[f'{stem}_face{face.index}_restored.png'] = face.restored
    try:
        plan.add_during_run([(osp.join(args.output, name), path) for name in crops])
    except OutputPathError as error:
        return None, [(path, f'not written: {error}')]
    targets = {osp.join(args.output, name): rgb for name, rgb in {**targets, **crops}.items()}
    for target, rgb in targets.items():
        write_png(target, rgb)
    skipped = [(f'{path} face {face.index}', face.skip_reason) for face in result.skipped_faces]
    if not result.faces:
        skipped.append((path, 'no face found; written unchanged'))
    return result, skipped


def run(args: argparse.Namespace) -> int:
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
            result, problems = restore_one(photo_restorer, path, stem, args, plan)
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
    possible = (f'; {len(result.possible_faces)} possible face(s) not restored (found only by the more sensitive '
                'second pass)' if result.possible_faces else '')
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
