"""A run's lock file is gone when the run ends: from its folder, from a folder it archived, and never while held."""
import os

from sfmnet_plugin.utils import run_lock
from sfmnet_plugin.utils.run_lock import LOCK_NAME, FolderLock, RunFolderLocks


def test_release_deletes_the_lock_file(tmp_path):
    lock = FolderLock(str(tmp_path)).acquire()
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    lock.release()
    assert os.listdir(tmp_path) == []
    FolderLock(str(tmp_path)).acquire().release()  # the folder is free again


def test_archiving_and_ending_a_run_leave_no_lock_file(tmp_path):
    folder = tmp_path / 'run'
    folder.mkdir()
    (folder / LOCK_NAME).write_text('12345\n')  # a dead run's stale lock file
    locks = RunFolderLocks()

    def archive(path):  # BasicSR's mkdir_and_rename: the old folder to a sibling, then a new one
        os.rename(path, path + '_archived_20260101_000000')
        os.makedirs(path)

    locks.wrap_mkdir_and_rename(archive)(str(folder))
    assert os.listdir(tmp_path / 'run_archived_20260101_000000') == []
    assert os.listdir(folder) == [LOCK_NAME]
    locks.release_all()
    assert os.listdir(folder) == []


def test_a_lock_file_deleted_between_open_and_lock_is_not_held(tmp_path, monkeypatch):
    """A run ending right after this one opened its lock file: this one locks the folder's new file, not the old."""
    real_open, opened = os.open, []

    def open_then_the_other_run_ends(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        if not opened:
            os.unlink(path)  # what the ending run's release does
        opened.append(fd)
        return fd

    monkeypatch.setattr(run_lock.os, 'open', open_then_the_other_run_ends)
    lock = FolderLock(str(tmp_path)).acquire()
    assert len(opened) == 2 and os.listdir(tmp_path) == [LOCK_NAME]
    lock.release()
    assert os.listdir(tmp_path) == []
