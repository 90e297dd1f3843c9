"""One live run per experiment (or results) folder: a lock file held while the run uses the folder.

Without a lock, two ``sfmnet-train`` runs with the same ``name`` at once would share one folder: the second would
archive the first, live run's folder (BasicSR's ``mkdir_and_rename``) and the first run's checkpoints would then
land in the second run's folder, both exiting 0. A run holds an exclusive ``fcntl.flock`` on ``<folder>/.run.lock``
(which records its PID) from before it touches the folder until it ends; a second run finds the lock
taken and stops with :class:`RunFolderInUseError` naming the folder and the running PID, before it
archives, creates or writes anything. The kernel releases a flock when its process dies, however it
dies, so a killed run's folder is usable again at once (the stale file is simply locked anew). A run that ends
normally deletes its lock file while it still holds the lock; a run that finds its locked file deleted that way
(it opened it just before) locks the folder's new file instead, so two runs never hold one folder.
"""
import fcntl
import os
from os import path as osp

LOCK_NAME = '.run.lock'


class RunFolderInUseError(RuntimeError):
    """The experiment or results folder is in use by another live run."""


class FolderLock:
    """An exclusive, non-blocking flock on ``<folder>/.run.lock`` holding this process's PID.

    With ``lock_name=None`` the folder itself is locked (its directory descriptor: no file is added to it, and the
    lock moves with the folder when it is renamed); the holder's PID is then read from ``holder_file`` in it.
    """

    def __init__(self, folder, lock_name=LOCK_NAME, holder_file=None):
        self.folder = folder
        self.path = osp.join(folder, lock_name) if lock_name else folder
        self.holder_path = osp.join(folder, holder_file) if holder_file else self.path
        self._fd = None

    def _holder(self):
        try:
            with open(self.holder_path, 'rb') as f:
                return f.read(32).decode('ascii', 'replace').strip() or 'unknown'
        except OSError:
            return 'unknown'

    def acquire(self):
        """Take the lock (creating the lock file), or raise :class:`RunFolderInUseError` if a live run holds it."""
        while True:
            if self.path == self.folder:  # the folder itself: it cannot be deleted under us while it is open
                fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
            else:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFolderInUseError(
                    f'{self.folder} is in use by a running process (PID {self._holder()}); wait for it to finish or '
                    'stop it, or give this run another name.') from None
            if self.path == self.folder or self._is_the_folders_file(fd):
                break
            os.close(fd)  # a run that ended deleted this file after we opened it: lock the folder's current one
        if self.path != self.folder:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f'{os.getpid()}\n'.encode('ascii'), 0)
        self._fd = fd
        return self

    def _is_the_folders_file(self, fd):
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def release_archived(self):
        """:meth:`release` after BasicSR renamed the folder to a sibling (``<name>_archived_<time>``): the lock file
        goes with it, so it is found among the siblings by its identity and deleted there."""
        if self._fd is not None and not self._is_the_folders_file(self._fd):
            held = os.fstat(self._fd)
            parent = osp.dirname(osp.abspath(self.folder))
            for sibling in os.listdir(parent):
                candidate = osp.join(parent, sibling, LOCK_NAME)
                try:
                    on_disk = os.stat(candidate)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                    os.unlink(candidate)
                    break
        self.release()

    def release(self):
        """Delete the lock file (still locked, so no other run holds it meanwhile) and release the lock."""
        if self._fd is not None:
            if self.path != self.folder and self._is_the_folders_file(self._fd):  # not when the folder was
                os.unlink(self.path)  # archived (renamed) meanwhile, nor the folder itself
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self):
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc_info):
        self.release()


class RunFolderLocks:
    """The folders one run holds; :meth:`claim` before a folder is archived or used, :meth:`release_all` at the end."""

    def __init__(self):
        self.locks = {}

    def claim(self, folder):
        """Lock ``folder`` (it must exist) for this run, unless this run holds it already."""
        key = osp.realpath(folder)
        if key not in self.locks:
            self.locks[key] = FolderLock(folder).acquire()

    def wrap_mkdir_and_rename(self, mkdir_and_rename):
        """BasicSR's ``mkdir_and_rename(path)`` that never archives a folder a live run holds and locks the new one."""
        def locked_mkdir_and_rename(path):
            # The old folder's lock is held through the archive rename: a live run's folder is never moved.
            old = FolderLock(path).acquire() if osp.isdir(path) and osp.realpath(path) not in self.locks else None
            try:
                mkdir_and_rename(path)
            finally:
                if old is not None:
                    old.release_archived()
            self.claim(path)

        return locked_mkdir_and_rename

    def release_all(self):
        for lock in self.locks.values():
            lock.release()
        self.locks.clear()
