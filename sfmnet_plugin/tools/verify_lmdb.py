"""``sfmnet-verify-lmdb`` (also ``datasets_prep/verify_lmdb.py``): check LMDBs, HR/LR pairs and prepared splits.

The checks are :func:`sfmnet_plugin.data.lmdb_reader.check_lmdb` and :mod:`sfmnet_plugin.prep.verify`.
"""
import argparse
import sys
from os import path as osp

from sfmnet_plugin.data.lmdb_reader import check_lmdb, read_meta_info
from sfmnet_plugin.prep.output_folders import OLD_SUFFIX
from sfmnet_plugin.prep.split_writer import REPORT_NAME
from sfmnet_plugin.prep.verify import check_pair, check_split_report, pairs_in_folder
from sfmnet_plugin.tools.common import add_workers_argument, run_prep_tool


def build_parser():
    parser = argparse.ArgumentParser(
        description='Check LMDBs against their meta_info.txt (keys, decodability, shapes, no extra keys) and HR/LR '
                    'LMDB pairs against each other. Exit code 1 if anything is wrong.',
        epilog='Examples: python datasets_prep/verify_lmdb.py datasets/CelebA/train\n'
               '          python datasets_prep/verify_lmdb.py --pair datasets/x/HR.lmdb datasets/x/LR_x8.lmdb 8',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('paths', nargs='*',
                        help='LMDB folders, or split folders whose *.lmdb are all checked and HR.lmdb paired with '
                             'each LR_x<s>.lmdb')
    parser.add_argument('--pair', nargs=3, action='append', default=[], metavar=('HR', 'LR', 'SCALE'),
                        help='also check that LMDB LR pairs with LMDB HR at SCALE; repeatable')
    add_workers_argument(parser, 'processes decoding images')
    return parser


def _report(title, problems):
    print(f'{"FAIL" if problems else "OK  "} {title}')
    for problem in problems:
        print(f'     - {problem}')
    return not problems


def run(argv=None):
    """Check the given LMDBs and pairs; returns 0 if all are sound, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.paths and not args.pair:
        parser.error('give at least one LMDB or split folder, or --pair HR LR SCALE')
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
        if not scale.isdigit() or int(scale) < 1:
            parser.error(f'--pair {hr_path} {lr_path} {scale}: SCALE must be a positive integer')
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


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors print ``error: ...`` and exit with 2."""
    return run_prep_tool(run, argv)


if __name__ == '__main__':
    sys.exit(main())
