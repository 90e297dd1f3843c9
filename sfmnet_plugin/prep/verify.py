"""Check BasicSR LMDBs and prepared splits (``sfmnet-verify-lmdb`` is the CLI).

:func:`check_lmdb`: every key of ``meta_info.txt`` is stored, decodes as a PNG of the stated
shape, and nothing else is stored. :func:`check_pair`: an HR and an LR LMDB hold the same keys
and every HR image is ``scale`` times its LR image. :func:`check_split_report`: a prepared split
holds exactly what its ``prepare_report.txt`` says (every LMDB and PNG folder, with the same
images). Each returns a list of problems (empty = OK).
"""
import os
import re
from os import path as osp

from sfmnet_plugin.data.lmdb_reader import examples, read_meta_info
from sfmnet_plugin.prep.output_folders import OLD_SUFFIX, PARTIAL_SUFFIX
from sfmnet_plugin.prep.split_writer import CONTENTS_PREFIX, HR_LABEL, REPORT_NAME

_LR_LMDB = re.compile(r'^LR_x(\d+)\.lmdb$')


def check_pair(hr_path, lr_path, scale):
    """Problems pairing an HR LMDB with an LR LMDB at ``scale`` (same keys; HR size = scale x LR size)."""
    try:
        hr_meta, lr_meta = read_meta_info(hr_path), read_meta_info(lr_path)
    except (FileNotFoundError, ValueError) as err:
        return [str(err)]
    problems = []
    only_hr, only_lr = set(hr_meta).difference(lr_meta), set(lr_meta).difference(hr_meta)
    if only_hr:
        problems.append(f'{len(only_hr)} keys of {hr_path} are missing from {lr_path}: {examples(only_hr)}')
    if only_lr:
        problems.append(f'{len(only_lr)} keys of {lr_path} are missing from {hr_path}: {examples(only_lr)}')
    wrong = [f'{key} (HR {hr_meta[key]}, LR {lr_meta[key]})' for key in hr_meta
             if key in lr_meta and hr_meta[key] != (lr_meta[key][0] * scale, lr_meta[key][1] * scale, lr_meta[key][2])]
    if wrong:
        problems.append(f'{len(wrong)} HR images are not {scale} x their LR image in {lr_path}: {examples(wrong)}')
    return problems


_SUMMARY_LINE = re.compile(r'^\[[^\]]*\] wrote (\d+) images?\b')
_CONTENTS_LINE = re.compile(r'^' + re.escape(CONTENTS_PREFIX) + r'(\d+) images in (.+)$')


def check_split_report(folder):
    """Problems of a prepared split folder against its ``prepare_report.txt`` (an empty list when they agree).

    The report's first line says how many images were written, and its ``contents:`` line which
    LMDBs and PNG folders hold them: each must exist and hold exactly the HR LMDB's keys, and no
    other LMDB may be in the folder. A folder without a report (not made by the preparation
    scripts) gets no report check. A leftover of an interrupted rebuild is reported too.
    """
    problems = [f'{folder}{suffix} is left over from an interrupted run; run the preparation again (it finishes '
                'or removes it)' for suffix in (PARTIAL_SUFFIX, OLD_SUFFIX) if osp.exists(folder + suffix)]
    report = osp.join(folder, REPORT_NAME)
    if not osp.isfile(report):
        return problems
    with open(report, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    summary = _SUMMARY_LINE.match(lines[0]) if lines else None
    contents = _CONTENTS_LINE.match(lines[1]) if len(lines) > 1 else None
    if summary is None:
        return problems + [f'{report}: the first line does not say how many images were written']
    count = int(summary[1])
    listed = contents[2].split(', ') if contents else [name for name in os.listdir(folder) if name.endswith('.lmdb')]
    if contents and int(contents[1]) != count:
        problems.append(f'{report}: says {count} images written but {contents[1]} in its contents line')
    reference = None
    for entry in listed:
        path = osp.join(folder, entry.rstrip('/'))
        if not osp.isdir(path):
            problems.append(f'{path} is missing although {REPORT_NAME} lists it')
            continue
        keys = _entry_keys(path, entry.endswith('/'))
        if len(keys) != count:
            problems.append(f'{path} holds {len(keys)} images but {REPORT_NAME} says {count}')
        if reference is None:
            reference = (path, keys)
        elif keys != reference[1]:
            problems.append(f'{path} and {reference[0]} do not hold the same images: '
                            f'{examples(keys.symmetric_difference(reference[1]))}')
    unlisted = [name for name in os.listdir(folder) if name.endswith('.lmdb') and name not in listed]
    if unlisted:
        problems.append(f'{folder} holds LMDBs that {REPORT_NAME} does not list: {examples(unlisted)}')
    return problems


def _entry_keys(path, is_png_folder):
    """The image keys of a split entry: PNG stems of a folder, or the keys in an LMDB's meta_info.txt."""
    if is_png_folder:
        return {name[:-len('.png')] for name in os.listdir(path) if name.endswith('.png')}
    try:
        return set(read_meta_info(path))
    except (FileNotFoundError, ValueError):
        return set()


def pairs_in_folder(folder):
    """(LMDB paths, [(HR.lmdb, LR_x<s>.lmdb, s)]) found directly in a split folder."""
    names = sorted(name for name in os.listdir(folder) if name.endswith('.lmdb'))
    lmdbs = [osp.join(folder, name) for name in names]
    pairs = []
    if f'{HR_LABEL}.lmdb' in names:
        pairs = [(osp.join(folder, f'{HR_LABEL}.lmdb'), osp.join(folder, name), int(_LR_LMDB.match(name)[1]))
                 for name in names if _LR_LMDB.match(name)]
    return lmdbs, pairs
