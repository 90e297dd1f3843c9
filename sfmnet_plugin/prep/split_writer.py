"""The machinery shared by the preparation scripts: crop/resize/encode in worker processes, write LMDBs in one.

Each source image becomes a :class:`Job` (its key, file path and crop). Worker processes of a
``multiprocessing.Pool`` decode, crop, resize to the HR size, make the LR images with
:func:`~sfmnet_plugin.data.downsample.downsample` and PNG-encode everything
(:func:`make_sample`); the parent receives them in job order and is the only writer of the LMDBs
(and of the optional PNG folders). Bad images never reach an output: undecodable ones and
unusable crops are skipped, odd colour modes are converted, and both are reported by file name.

Outputs appear atomically: everything is built under ``<final>.partial`` and swapped into
``<final>`` at the end (:func:`~sfmnet_plugin.prep.output_folders.build_atomically`), so a run
killed at any moment leaves the old complete output or the new complete one, and the next run
removes the leftover. Nothing is deleted that the tools did not create.
"""
import os
from collections import Counter
from dataclasses import dataclass, field
from os import path as osp
from typing import Callable, Dict, List, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.downsample import check_divisible, check_downsampler, downsample
from sfmnet_plugin.data.face_landmarks import check_points
from sfmnet_plugin.data.image_io import PNG_COMPRESS_LEVEL, ImageDecodeError, encode_png, read_rgb_image
from sfmnet_plugin.prep.face_crop import SkipImage
from sfmnet_plugin.prep.landmarks import add_lmdb_landmarks, check_landmark_models
from sfmnet_plugin.prep.lmdb_writer import LmdbWriter, check_lmdb_key
from sfmnet_plugin.prep.output_folders import (  # noqa: F401  (build_atomically: also used by prep_folder)
    PARTIAL_SUFFIX,
    build_atomically,
    recover_interrupted_swap,
)
from sfmnet_plugin.utils.atomic import atomic_write_bytes
from sfmnet_plugin.utils.output_paths import is_plain_name
from sfmnet_plugin.utils.parallel import parallel_imap

HR_LABEL = 'HR'
REPORT_NAME = 'prepare_report.txt'
CONTENTS_PREFIX = 'contents: '  # the report's second line: what the split must hold (verify_lmdb checks it)


class DataPrepError(Exception):
    """A problem with the inputs or options of a preparation run (printed as ``error: ...``, exit code 2)."""


def lr_label(scale):
    """The output label (and LMDB name stem) of the x``scale`` LR images: ``LR_x8``."""
    return f'LR_x{scale}'


def sfmnet_png_folder(label):
    """The folder name of an output in the official SFMNet layout (x8 is the unsuffixed ``LR_bicubic``)."""
    if label == HR_LABEL:
        return 'HR'
    return 'LR_bicubic' if label == lr_label(8) else f'{label}_bicubic'


@dataclass(frozen=True)
class Job:
    """One source image: its output key, its file and the crop (a callable from face_crop)."""
    key: str
    path: str
    crop: Callable


@dataclass(frozen=True)
class SampleSpec:
    """What to make of each cropped face.

    hr_size: resize the crop to ``hr_size x hr_size`` with PIL bicubic; None keeps its size.
    scales: one LR image per scale, made from the HR by ``downsampler``.
    min_crop_size: skip faces whose crop side in the source photo is below this (in pixels);
        upscaling a tiny face to the HR size gives a blurred "HR" image.
    landmarks: 68 also stores dlib's landmarks of every HR face beside HR.lmdb (:mod:`sfmnet_plugin.prep.landmarks`).
    """
    hr_size: int | None = 128
    scales: Tuple[int, ...] = (4, 8, 16)
    downsampler: str = 'pil_bicubic'
    min_crop_size: int = 0
    landmarks: int | None = None

    def __post_init__(self):
        check_downsampler(self.downsampler, '--downsampler')
        if self.landmarks is not None:
            check_points(self.landmarks, '--landmarks')
        if self.hr_size is not None:
            for scale in self.scales:
                check_divisible(self.hr_size, self.hr_size, scale, f'--hr-size {self.hr_size}')

    @property
    def labels(self):
        return [HR_LABEL] + [lr_label(scale) for scale in self.scales]


@dataclass
class Sample:
    """What a worker returns for one job: PNG bytes and shape per label, or why it was skipped.

    ``skip_reason`` reads ``<category>: <details>``; the summary counts skips per category.
    """
    key: str
    source: str
    images: Dict[str, Tuple[bytes, Tuple[int, int, int]]] = field(default_factory=dict)
    converted_from: str | None = None
    skip_reason: str | None = None


def make_sample(job, spec):
    """Decode, crop, resize and encode one job (runs in a worker process)."""
    sample = Sample(job.key, job.path)
    try:
        image, mode = read_rgb_image(job.path)
        face, crop_side = job.crop(image)
        if crop_side < spec.min_crop_size:
            raise SkipImage(f'too small: face crop of {crop_side:.0f} px is below --min-crop-size {spec.min_crop_size}')
    except OSError as err:  # the file itself: missing, a folder, no permission
        sample.skip_reason = f'unreadable: {err.strerror or err}'
        return sample
    except ImageDecodeError as err:
        sample.skip_reason = f'unreadable: {err.__cause__ or err}'
        return sample
    except SkipImage as err:
        sample.skip_reason = str(err)
        return sample
    if mode != 'RGB':
        sample.converted_from = mode
    hr = face
    if spec.hr_size is not None and face.shape[:2] != (spec.hr_size, spec.hr_size):
        hr = np.array(Image.fromarray(face).resize((spec.hr_size, spec.hr_size), Image.Resampling.BICUBIC))
    sample.images[HR_LABEL] = (encode_png(hr), hr.shape)
    for scale in spec.scales:
        lr = downsample(hr, scale, spec.downsampler, name=job.path)
        sample.images[lr_label(scale)] = (encode_png(lr), lr.shape)
    return sample


@dataclass
class PrepSummary:
    """Counts and names of what a run wrote, converted and skipped."""
    name: str
    written: int = 0
    converted: List[Tuple[str, str]] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def report_lines(self):
        lines = [f'{source}: converted {mode} to RGB' for source, mode in self.converted]
        return lines + [f'{source}: skipped, {reason}' for source, reason in self.skipped]

    def __str__(self):
        def counts(labels):
            return ', '.join(f'{label} {count}' for label, count in sorted(Counter(labels).items()))

        text = f'[{self.name}] wrote {self.written} image' + ('' if self.written == 1 else 's')
        if self.converted:
            text += f'; converted to RGB: {len(self.converted)} ({counts(mode for _, mode in self.converted)})'
        if self.skipped:
            text += f'; skipped {len(self.skipped)} ({counts(reason.split(":")[0] for _, reason in self.skipped)})'
        return text


@dataclass(frozen=True)
class Target:
    """Where one label goes: an LMDB folder and, optionally, a PNG folder."""
    lmdb_path: str
    png_dir: str | None = None


def _make_sample_task(task):
    job, spec = task
    return make_sample(job, spec)


def write_samples(jobs, spec, targets, workers, name, batch_size=1000, map_size=1 << 30):
    """Make every job's images and write them to ``targets`` (label -> Target); return a PrepSummary.

    The targets' folders must not exist yet (they live inside a :func:`build_atomically` folder).
    """
    summary = PrepSummary(name)
    writers = {label: LmdbWriter(target.lmdb_path, batch_size=batch_size, map_size=map_size,
                                 compress_level=PNG_COMPRESS_LEVEL)
               for label, target in targets.items()}
    for target in targets.values():
        if target.png_dir:
            os.makedirs(target.png_dir)
    try:
        with tqdm(total=len(jobs), desc=name, unit='img', dynamic_ncols=True) as progress:
            for sample in parallel_imap(_make_sample_task, [(job, spec) for job in jobs], workers):
                progress.update()
                if sample.skip_reason:
                    summary.skipped.append((sample.source, sample.skip_reason))
                    progress.write(f'{sample.source}: skipped, {sample.skip_reason}')
                    continue
                if sample.converted_from:
                    summary.converted.append((sample.source, sample.converted_from))
                    progress.write(f'{sample.source}: converted {sample.converted_from} to RGB')
                for label, target in targets.items():
                    png, shape = sample.images[label]
                    writers[label].put(sample.key, png, shape)
                    if target.png_dir:  # a full disk is one error naming the file
                        atomic_write_bytes(osp.join(target.png_dir, f'{sample.key}.png'), png)
                summary.written += 1
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.close()
    return summary


def check_job_keys(jobs, where):
    """Raise a DataPrepError listing image names that cannot be LMDB keys, before any work starts."""
    bad = []
    for job in jobs:
        try:
            check_lmdb_key(job.key, where)
        except ValueError:
            bad.append(job.path)
    if bad:
        raise DataPrepError(f'{where}: {len(bad)} file names cannot be LMDB keys (keys are the names without '
                            f'extension; ASCII, no dots or spaces), e.g. {", ".join(bad[:5])}. Rename them.')


def output_exists(final_path, overwrite):
    """True if ``final_path`` is already complete and should be kept (a message says so)."""
    if osp.exists(final_path) and not overwrite:
        print(f'{final_path} already exists: skipped (pass --overwrite to rebuild it).')
        return True
    return False


def check_split_name(split):
    """Split names become folder names under ``--out``: plain names only, never a path."""
    if not is_plain_name(split):
        raise DataPrepError(f'split name {split!r}: use a plain name of letters, digits, ".", "_" and "-" '
                            '(e.g. test); a split name is a folder under --out, never a path.')


def check_output_root(out_root):
    """``--out`` must be a folder (or not exist yet)."""
    if osp.exists(out_root) and not osp.isdir(out_root):
        raise DataPrepError(f'--out {out_root}: is a file, not a folder; choose a folder for the outputs.')


def contents_line(labels, save_png, count):
    """The report line that lists what a complete split holds: ``contents: 5 images in HR.lmdb, ..., HR/``."""
    outputs = [f'{label}.lmdb' for label in labels] + ([f'{sfmnet_png_folder(label)}/' for label in labels]
                                                      if save_png else [])
    return f'{CONTENTS_PREFIX}{count} images in {", ".join(outputs)}'


def split_targets(split_dir, labels, save_png):
    """Targets of one split: ``<label>.lmdb`` and, with ``save_png``, the SFMNet PNG folders."""
    return {label: Target(osp.join(split_dir, f'{label}.lmdb'),
                          osp.join(split_dir, sfmnet_png_folder(label)) if save_png else None)
            for label in labels}


def check_output_root_holds_no_input(out_root, jobs):
    """``--out`` must not be, or lie above, a folder of the run's source images (links resolved): the splits would
    be written among the release's own files."""
    root = osp.realpath(out_root)
    for folder in sorted({osp.dirname(job.path) for job in jobs}):
        real = osp.realpath(folder)
        if real == root or real.startswith(root + os.sep):
            raise DataPrepError(f'--out {out_root} holds the input folder {folder}: the outputs would be written '
                                'among the inputs; choose an --out outside the input folders.')


def prepare_split(out_root, split, jobs, spec, workers, save_png=False, overwrite=False):
    """Build ``<out_root>/<split>/`` (LMDBs, PNG folders, report) atomically; None if it exists already."""
    check_split_name(split)
    check_output_root(out_root)
    check_output_root_holds_no_input(out_root, jobs)
    final_dir = osp.join(out_root, split)
    recover_interrupted_swap(final_dir)
    if output_exists(final_dir, overwrite):
        return None
    if not jobs:
        raise DataPrepError(f'Split {split!r} has no images.')
    if spec.landmarks:
        check_landmark_models(spec.landmarks)
    check_job_keys(jobs, f'split {split!r}')
    os.makedirs(out_root, exist_ok=True)
    with build_atomically(final_dir) as partial_dir:
        summary = write_samples(jobs, spec, split_targets(partial_dir, spec.labels, save_png), workers, split)
        if summary.written == 0:
            raise DataPrepError(f'[{split}] none of the {len(jobs)} images could be used (see the messages above).')
        if spec.landmarks:
            add_lmdb_landmarks(osp.join(partial_dir, f'{HR_LABEL}.lmdb'), spec.landmarks, workers)
        report = [str(summary), contents_line(spec.labels, save_png, summary.written), *summary.report_lines()]
        atomic_write_bytes(osp.join(partial_dir, REPORT_NAME), ''.join(f'{line}\n' for line in report).encode('utf-8'))
    print(f'{summary} -> {final_dir}')
    return summary
