"""The body of ``sfmnet-prepare-celeba`` (its command line: :mod:`sfmnet_cli.prepare_celeba`): crop CelebA faces
and write HR and LR LMDBs with :func:`sfmnet_plugin.prep.celeba.prepare_celeba`."""
import argparse

from sfmnet_plugin.prep.celeba import prepare_celeba, protocol_defaults
from sfmnet_plugin.prep.split_writer import DataPrepError, check_split_name
from sfmnet_plugin.tools.common import spec_from_args

# a wrong input (DataPrepError) or value: one line, as the plugin's error boundary prints it, and exit status 2
USER_ERRORS = (DataPrepError, ValueError)


def parse_split_list_option(text):
    """``NAME:FILE`` -> (NAME, FILE)."""
    name, sep, file = text.partition(':')
    if not sep or not name or not file:
        raise DataPrepError(f'--split-list {text!r}: expected NAME:FILE, e.g. test:lists/celeba_test.txt.')
    check_split_name(name)
    return name, file


def split_lists_from_options(options):
    """``{split: list file}`` of the ``--split-list NAME:FILE`` options, in their order."""
    split_lists = {}
    for option in options:
        split, list_file = parse_split_list_option(option)
        if split in split_lists:
            raise DataPrepError(f'--split-list: split {split!r} is given twice.')
        split_lists[split] = list_file
    return split_lists


def run(args: argparse.Namespace) -> int:
    """Prepare the requested CelebA splits; returns the exit code (bad input raises DataPrepError)."""
    if args.min_crop_size is None:
        args.min_crop_size = protocol_defaults(args.protocol)[1]
    prepare_celeba(args.root, args.out, args.protocol, image_dir=args.images, crop_from=args.crop_from,
                   margin=args.margin, aligned_crop_size=args.aligned_crop_size, splits=args.splits,
                   split_lists=split_lists_from_options(args.split_list), spec=spec_from_args(args),
                   workers=args.workers, save_png=args.save_png, overwrite=args.overwrite)
    return 0


