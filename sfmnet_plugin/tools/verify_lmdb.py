"""The body of ``sfmnet-verify-lmdb`` (its command line: :mod:`sfmnet_cli.verify_lmdb`): check LMDBs, HR/LR pairs and
prepared splits with :func:`sfmnet_plugin.data.lmdb_reader.check_lmdb` and :mod:`sfmnet_plugin.prep.verify`."""
import argparse
from os import path as osp

from sfmnet_plugin.data.lmdb_reader import check_lmdb, read_meta_info
from sfmnet_plugin.prep.output_folders import OLD_SUFFIX
from sfmnet_plugin.prep.split_writer import REPORT_NAME, DataPrepError
from sfmnet_plugin.prep.verify import check_pair, check_split_report, pairs_in_folder

# a wrong input (DataPrepError) or value: one line, as the plugin's error boundary prints it, and exit status 2
USER_ERRORS = (DataPrepError, ValueError)


def _report(title, problems):
    print(f'{"FAIL" if problems else "OK  "} {title}')
    for problem in problems:
        print(f'     - {problem}')
    return not problems


def run(args: argparse.Namespace) -> int:
    """Check the given LMDBs and pairs; returns 0 if all are sound, else 1."""
    lmdbs, pairs, splits = [], [], []
    for path in args.paths:
        path = path.rstrip('/') or path
        if path.endswith('.lmdb') or osp.isfile(osp.join(path, 'data.mdb')):
            lmdbs.append(path)
        elif osp.isdir(path):
            found, found_pairs = pairs_in_folder(path)
            if not found:
                raise FileNotFoundError(f'{path}: no *.lmdb folders inside.')
            lmdbs.extend(found)
            pairs.extend(found_pairs)
            splits.append(path)
        elif osp.exists(path + OLD_SUFFIX):
            raise FileNotFoundError(f'{path}: not found; a rebuild was interrupted and the previous complete output '
                                    f'is at {path + OLD_SUFFIX}: run the preparation again to restore it.')
        else:
            raise FileNotFoundError(f'{path}: not found.')
    for hr_path, lr_path, scale in args.pair:
        pairs.append((hr_path, lr_path, int(scale)))
        lmdbs.extend(path for path in (hr_path, lr_path) if path not in lmdbs)
    sound = True
    for lmdb_path in lmdbs:
        problems = check_lmdb(lmdb_path, args.workers)
        count = 0 if problems else len(read_meta_info(lmdb_path))
        sound &= _report(f'{lmdb_path}' + ('' if problems else f': {count} images'), problems)
    for hr_path, lr_path, scale in pairs:
        sound &= _report(f'{hr_path} x{scale} <- {lr_path}', check_pair(hr_path, lr_path, scale))
    for split in splits:
        problems = check_split_report(split)
        if problems or osp.isfile(osp.join(split, REPORT_NAME)):  # a folder without a report gets no line
            sound &= _report(f'{split} against its {REPORT_NAME}', problems)
    return 0 if sound else 1


