"""Atomic file outputs: write beside the target, then rename, so a kill leaves the old or the new file."""
import os
from os import path as osp


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary name beside ``path``, then rename: a kill never leaves a truncated file."""
    import torch

    partial = f'{path}.partial'
    try:
        torch.save(obj, partial)
        os.replace(partial, path)
    except BaseException:  # a full disk or a folder at ``path``: leave nothing half-written behind
        if osp.isfile(partial):
            os.remove(partial)
        raise
