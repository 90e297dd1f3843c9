"""Image folders -> BasicSR LMDBs (:func:`convert_folder`, :func:`convert_sfmnet_layout`; ``sfmnet-folder-to-lmdb``).

* ``SRC_DIR OUT.lmdb``: every image directly in SRC_DIR (png/jpg/jpeg/bmp/webp) becomes one
  RGB PNG (compress level 1) under its file name without extension. Grey, RGBA and CMYK images
  are converted, undecodable ones skipped; both are reported. Pixels are otherwise unchanged.
  Images in subfolders are listed as skipped, or with ``--recursive`` taken under their relative
  path without extension (``person1/001``; keys stay unique).
* :func:`convert_sfmnet_layout` (``--sfmnet-layout SRC_ROOT OUT_DIR``): the layout of the released SFMNet data
  (``HR/``, ``LR_bicubic/`` (x8), ``LR_x4_bicubic/``, ``LR_x16_bicubic/``) becomes
  ``OUT_DIR/HR.lmdb``, ``LR_x8.lmdb``, ``LR_x4.lmdb``, ``LR_x16.lmdb``; the LR LMDBs are then
  checked to pair up with the HR one by name and size.

Each LMDB is written as ``<name>.lmdb.partial`` and swapped into place when complete; an existing
LMDB is only replaced with ``--overwrite`` and only if this tool made it.
"""
import os
import re
from os import path as osp

from sfmnet_plugin.data.image_io import images_in_subfolders, list_image_files
from sfmnet_plugin.prep.face_crop import WholeImage
from sfmnet_plugin.prep.landmarks import add_lmdb_landmarks, check_landmark_models
from sfmnet_plugin.prep.split_writer import (
    HR_LABEL,
    DataPrepError,
    Job,
    SampleSpec,
    Target,
    build_atomically,
    check_job_keys,
    check_output_root,
    lr_label,
    output_exists,
    recover_interrupted_swap,
    sfmnet_png_folder,
    write_samples,
)
from sfmnet_plugin.prep.verify import check_pair
from sfmnet_plugin.utils.output_guard import OutputPlan

_SFMNET_LR_FOLDER = re.compile(r'^LR_x(\d+)_bicubic$')
_COPY_AS_IS = SampleSpec(hr_size=None, scales=())


def sfmnet_layout_scale(folder_name):
    """The scale of an SFMNet folder name (None for HR/), or no match (False) for other folders."""
    if folder_name == sfmnet_png_folder(HR_LABEL):
        return None
    if folder_name == sfmnet_png_folder(lr_label(8)):
        return 8
    match = _SFMNET_LR_FOLDER.match(folder_name)
    return int(match[1]) if match else False


def convert_folder(source, lmdb_path, workers, overwrite=False, recursive=False, landmarks=None):
    """Write the images of ``source`` into ``lmdb_path``; return the PrepSummary (None if it exists).

    Without ``recursive`` the images in subfolders are not converted and are listed as skipped. ``landmarks``
    (68) also stores dlib's landmarks of every face beside the LMDB (:mod:`sfmnet_plugin.prep.landmarks`).
    """
    if not lmdb_path.endswith('.lmdb'):
        raise DataPrepError(f'{lmdb_path}: an LMDB path must end with .lmdb (BasicSR detects LMDBs by the suffix).')
    parent = osp.dirname(osp.abspath(lmdb_path))
    check_output_root(parent)
    recover_interrupted_swap(lmdb_path)
    if osp.exists(lmdb_path) and not overwrite and not osp.isfile(osp.join(lmdb_path, 'data.mdb')):
        # "already exists: skipped" would report success with no LMDB there
        raise DataPrepError(f'{lmdb_path} exists but is not an LMDB (no data.mdb); it is left as it is: choose '
                            'another output path.')
    OutputPlan(lmdb_path, [('source folder', source)], option='output LMDB').check(writable=False)
    if output_exists(lmdb_path, overwrite):
        return None
    if landmarks:
        check_landmark_models(landmarks)
    not_files = []  # image names that are no regular file (dangling links, loops, FIFOs, devices): never read
    images = list_image_files(source, recursive=recursive, skipped=not_files)
    left_out = [] if recursive else images_in_subfolders(source)
    if not images:
        raise DataPrepError(f'{source}: no images (png/jpg/jpeg/bmp/webp) found'
                            + (f' directly in it; {len(left_out)} in subfolders: pass --recursive.' if left_out
                               else '.'))
    jobs = [Job(stem, path, WholeImage()) for stem, path in images.items()]
    check_job_keys(jobs, source)
    os.makedirs(parent, exist_ok=True)
    with build_atomically(lmdb_path) as partial:
        summary = write_samples(jobs, _COPY_AS_IS, {HR_LABEL: Target(partial)}, workers, osp.basename(lmdb_path))
        if summary.written == 0:
            raise DataPrepError(f'{source}: none of the {len(jobs)} images could be decoded.')
        if landmarks:
            add_lmdb_landmarks(partial, landmarks, workers)
    summary.skipped += [(osp.join(source, name), 'in a subfolder: pass --recursive to include it')
                        for name in left_out] + not_files
    for name in left_out:
        print(f'{osp.join(source, name)}: skipped, in a subfolder (pass --recursive to include it)')
    for path, reason in not_files:
        print(f'{path}: skipped, {reason}')
    print(f'{summary} -> {lmdb_path}')
    return summary


def convert_sfmnet_layout(source_root, out_dir, workers, overwrite=False, recursive=False):
    """Convert HR/ and every LR_*bicubic/ folder; return pairing problems (an empty list when all pair up)."""
    if not osp.isdir(osp.join(source_root, 'HR')):
        raise DataPrepError(f'{source_root}: no HR/ folder; expected the SFMNet layout '
                            'HR/, LR_bicubic/, LR_x4_bicubic/, ...')
    scales = {}
    for entry in sorted(os.listdir(source_root)):
        scale = sfmnet_layout_scale(entry)
        if scale is not False and osp.isdir(osp.join(source_root, entry)):
            scales[entry] = scale
    lmdb_of = {entry: osp.join(out_dir, f'{HR_LABEL if scale is None else lr_label(scale)}.lmdb')
               for entry, scale in scales.items()}
    for entry, lmdb_path in lmdb_of.items():
        convert_folder(osp.join(source_root, entry), lmdb_path, workers, overwrite, recursive)
    hr_lmdb = lmdb_of['HR']
    return [problem for entry, scale in scales.items() if scale is not None
            for problem in check_pair(hr_lmdb, lmdb_of[entry], scale)]
