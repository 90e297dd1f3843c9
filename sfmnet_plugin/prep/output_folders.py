"""Output folders that appear whole or not at all, and are only ever deleted by the tool that made them.

A preparation output (a split folder, an LMDB) is built under ``<final>.partial`` and swapped
into place at the end. The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux, so a kill at any
moment leaves ``<final>`` holding either the old complete output or the new complete one; where
the exchange is not available, the old output is first renamed ``<final>.old`` and the next run
(:func:`recover_interrupted_swap`) puts it back if the new one never arrived.

A folder being built, swapped out or finished carries an :data:`OWNER_MARKER` file (the finished output keeps
it): only such a folder is ever replaced or deleted, so a wrong ``--out`` or split
name can never remove a user's folder. The run that builds ``<final>.partial`` holds the run lock on it (and on
the old output it swaps out) until it is done: a second run on the same output is refused naming the first's PID,
never deleting its folder as "left over" (:func:`sfmnet_plugin.utils.output_guard.lock_folder_being_built`).
"""
import ctypes
import os
from contextlib import ExitStack, contextmanager, suppress
from os import path as osp

from sfmnet_plugin.utils.output_guard import (  # noqa: F401  (the ownership rules live in the output guard)
    OWNER_MARKER,
    NotOurOutputError,
    delete_marker_last,
    lock_folder_being_built,
    looks_like_ours,
    mark_as_ours,
    refuse_unless_ours,
    remove_our_folder,
)

PARTIAL_SUFFIX = '.partial'
OLD_SUFFIX = '.old'
_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(source, target):
    """Atomically swap two existing paths (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), _RENAME_EXCHANGE)
    return result == 0


def recover_interrupted_swap(final_path):
    """Finish or undo a swap that a kill interrupted (only where the exchange was unavailable)."""
    old = final_path + OLD_SUFFIX
    if not osp.exists(old):
        return
    if osp.exists(final_path):  # the new output arrived: the old one is garbage
        remove_our_folder(old)
    elif looks_like_ours(old):  # killed between the two renames: put the old output back
        os.rename(old, final_path)
        print(f'Restored {final_path} from {old} (a rebuild was interrupted).')


@contextmanager
def build_atomically(final_path):
    """Yield ``<final_path>.partial`` (marked as ours, locked) to build into; on success swap it into ``final_path``.

    A leftover ``.partial`` of an interrupted run is removed first (only if it is ours and no live run
    holds it: a live run's is :class:`~sfmnet_plugin.utils.run_lock.RunFolderInUseError`).
    On an exception the partial folder is removed; the old output is untouched.
    """
    partial = final_path + PARTIAL_SUFFIX
    with ExitStack() as locks:
        if osp.lexists(partial) and not osp.islink(partial) and osp.isdir(partial):
            leftover = locks.enter_context(lock_folder_being_built(partial))  # refused while a live run builds it
            refuse_unless_ours(partial)
            print(f'Removing {partial}, left over from an interrupted run.')
            delete_marker_last(partial)
            leftover.release()
        elif osp.lexists(partial):
            refuse_unless_ours(partial)
        recover_interrupted_swap(final_path)
        refuse_unless_ours(final_path, action='replace')
        os.mkdir(partial)  # only one of two runs started at once succeeds
        try:
            locks.enter_context(lock_folder_being_built(partial))
            mark_as_ours(partial)
            yield partial
        except BaseException:
            with suppress(OSError):  # marker last, as every deletion of ours: a second kill leaves it recognisable
                delete_marker_last(partial)
            raise
        _swap_into_place(partial, final_path, locks)


def _swap_into_place(partial, final_path, locks):
    if not osp.exists(final_path):
        os.rename(partial, final_path)
        return
    mark_as_ours(final_path)  # the old output, deleted below: its marker names this run, the lock's holder
    locks.enter_context(lock_folder_being_built(final_path))  # held until it is deleted below
    if _exchange(partial, final_path):
        delete_marker_last(partial)  # now the old output; a kill here leaves a marked leftover for the next run
        return
    old = final_path + OLD_SUFFIX
    os.rename(final_path, old)
    os.rename(partial, final_path)
    delete_marker_last(old)
