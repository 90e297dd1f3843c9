"""``sfmnet-verify-lmdb`` (also ``datasets_prep/verify_lmdb.py``): check LMDBs, HR/LR pairs and prepared splits.

The checks are :func:`sfmnet_plugin.data.lmdb_reader.check_lmdb` and :mod:`sfmnet_plugin.prep.verify`.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_workers_argument
from sfmnet_cli.dispatch import run_tool


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


def main(argv: list[str] | None = None) -> int | None:
    """Console entry point: usage errors print ``error: ...`` and exit with 2; 0 if all is sound, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.paths and not args.pair:
        parser.error('give at least one LMDB or split folder, or --pair HR LR SCALE')
    for hr_path, lr_path, scale in args.pair:
        if not scale.isdigit() or int(scale) < 1:
            parser.error(f'--pair {hr_path} {lr_path} {scale}: SCALE must be a positive integer')
    return run_tool('verify_lmdb', args, 'sfmnet-verify-lmdb', status=2)


if __name__ == '__main__':
    sys.exit(main())
