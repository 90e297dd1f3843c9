"""``sfmnet-folder-to-lmdb`` (also ``datasets_prep/folder_to_lmdb.py``): image folders -> BasicSR LMDBs.

The work is :func:`sfmnet_plugin.prep.folder.convert_folder` or, with ``--sfmnet-layout``,
:func:`sfmnet_plugin.prep.folder.convert_sfmnet_layout`.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_landmarks_argument, add_workers_argument
from sfmnet_cli.dispatch import run_tool


def build_parser():
    parser = argparse.ArgumentParser(
        description='Convert a folder of images (or the SFMNet HR/LR_* layout) into BasicSR LMDBs.',
        epilog='Examples: python datasets_prep/folder_to_lmdb.py my_faces/ datasets/mine/HR.lmdb\n'
               '          python datasets_prep/folder_to_lmdb.py --sfmnet-layout SFMNet_data/CelebA/test '
               'datasets/CelebA_SFMNet/test',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='image folder (or, with --sfmnet-layout, the folder holding HR/ and LR_*/)')
    parser.add_argument('output', help='LMDB path ending in .lmdb (or, with --sfmnet-layout, the output folder)')
    parser.add_argument('--sfmnet-layout', action='store_true',
                        help='convert HR/, LR_bicubic/, LR_x<s>_bicubic/ into HR.lmdb, LR_x8.lmdb, LR_x<s>.lmdb')
    add_workers_argument(parser)
    parser.add_argument('--recursive', action='store_true',
                        help='also take images in subfolders, keyed by their relative path (person1/001); without it '
                             'they are listed as skipped')
    add_landmarks_argument(parser, 'every face beside the LMDB (landmarks_68.txt)')
    parser.add_argument('--overwrite', action='store_true', help='rebuild LMDBs that already exist (only LMDBs this '
                                                                 'tool made are replaced)')
    return parser


def main(argv: list[str] | None = None) -> int | None:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    args = build_parser().parse_args(argv)
    if args.sfmnet_layout and args.landmarks:
        print('error: --landmarks: with --sfmnet-layout, convert HR/ alone with --landmarks 68 (the LR folders need '
              'none).', file=sys.stderr)
        return 2
    return run_tool('folder_to_lmdb', args, 'sfmnet-folder-to-lmdb', status=2)


if __name__ == '__main__':
    sys.exit(main())
