"""Atomic file outputs: write beside the target, then rename, so a kill leaves the old or the new file."""
import os
from os import path as osp


def atomic_write(path, write):
    """Call ``write(partial_path)`` for a temporary name beside ``path``, then rename it to ``path``.

    A kill or an error (a full disk, a folder at ``path``) never leaves a truncated file under ``path``, and the
    half-written temporary file is removed.
    """
    partial = f'{path}.partial'
    try:
        write(partial)
        os.replace(partial, path)
    except BaseException:
        if osp.isfile(partial):
            os.remove(partial)
        raise


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary name beside ``path``, then rename: a kill never leaves a truncated file."""
    import torch

    atomic_write(path, lambda partial: torch.save(obj, partial))
