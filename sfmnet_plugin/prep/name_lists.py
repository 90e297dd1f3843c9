"""Text files the preparation reads: annotation files line by line, and split lists of image names."""
from os import path as osp

from sfmnet_plugin.prep.split_writer import DataPrepError


def read_text_lines(path):
    """The lines of a text file; a missing file is a DataPrepError naming it."""
    if not osp.isfile(path):
        raise DataPrepError(f'File not found: {path}')
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read().splitlines()


def read_name_list(path):
    """Image names of a split list (first token of each non-blank line) -> their line numbers.

    Lists such as FSRNet's ``fileList_*.txt`` or DIC's test lists give one file name per line;
    extra columns are ignored.
    """
    names = {}
    for line_no, line in enumerate(read_text_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] in names:
            raise DataPrepError(f'{path}, line {line_no}: {tokens[0]} is listed twice '
                                f'(first on line {names[tokens[0]]}).')
        names[tokens[0]] = line_no
    if not names:
        raise DataPrepError(f'{path}: the list is empty.')
    return names
