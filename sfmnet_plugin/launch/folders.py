"""The folders of one run: locked before BasicSR archives or uses them, removed if the run never started.

* The run holds a lock on its experiment (testing: results) folder, taken before BasicSR archives or uses it
  (:mod:`sfmnet_plugin.utils.run_lock`): a second run of the same name stops with the first one's PID instead of
  archiving a live run's folder. A resumed run (which makes no folder) locks its folder when its state is loaded.
* If the run fails before its first training iteration (testing: before it tests), e.g. on a broken dataset
  file or a network that cannot be built, the experiment and TensorBoard folders it created are removed and a
  folder BasicSR archived to make room (``<name>_archived_<time>``) gets its name back.

* Only the run's own folders are created (:func:`make_exp_dirs`): BasicSR's ``make_exp_dirs`` called
  ``os.makedirs`` on every ``path`` value it did not recognise as a file option, so ``path.network_format:
  safetensors`` (or a mistyped key) made a folder of that name in the current directory.

The run (:mod:`sfmnet_plugin.launch.session`) replaces BasicSR's ``mkdir_and_rename`` with
:meth:`RunFolders.mkdir_and_rename` of it, and its ``make_exp_dirs`` with :func:`make_exp_dirs`.
"""
import logging
import os
import shutil
from os import path as osp

from sfmnet_plugin.utils.run_lock import RunFolderLocks

LOGGER_NAME = 'basicsr'

# The folders BasicSR's parse_options puts under a run's own folder; nothing else in ``path`` is a folder.
RUN_FOLDER_KEYS = ('models', 'training_states', 'log', 'visualization')


def make_exp_dirs(opt: dict) -> None:
    """BasicSR's ``make_exp_dirs(opt)`` creating only the run's own folders: the run's folder
    (``experiments/<name>`` or ``results/<name>``, archived and made by ``mkdir_and_rename``, the run's locked one)
    and the folders of :data:`RUN_FOLDER_KEYS` inside it. Like BasicSR's (``@master_only``), only rank 0 makes them:
    the other ranks of a distributed run would find the run's folder locked by rank 0."""
    import basicsr.utils.misc as basicsr_misc
    from basicsr.utils.dist_util import get_dist_info

    if get_dist_info()[0] != 0:
        return

    path_opt = opt['path']
    root = path_opt['experiments_root' if opt['is_train'] else 'results_root']
    basicsr_misc.mkdir_and_rename(root)  # looked up at call time: the run's locked version
    inside = osp.realpath(root) + os.sep
    for key in RUN_FOLDER_KEYS:
        folder = path_opt.get(key)
        if isinstance(folder, str) and osp.realpath(folder).startswith(inside):
            os.makedirs(folder, exist_ok=True)


class RunFolders:
    """The folders one run holds, made and archived."""

    def __init__(self):
        self.locks = RunFolderLocks()
        self.created, self.parents, self.archived = [], [], []

    def mkdir_and_rename(self, upstream):
        """BasicSR's ``mkdir_and_rename(path)`` (``upstream``) that never archives a folder a live run holds,
        locks the folder it makes and records what it made and archived."""
        locked_mkdir_and_rename = self.locks.wrap_mkdir_and_rename(upstream)

        def run_mkdir_and_rename(path):
            parent = osp.dirname(path)
            if not osp.isdir(parent):  # e.g. tb_logger/ itself: removed too, if the run leaves it empty
                self.parents.append(parent)
            before = set(os.listdir(parent)) if osp.isdir(parent) else set()
            locked_mkdir_and_rename(path)
            self.archived += [(osp.join(parent, name), path) for name in sorted(set(os.listdir(parent)) - before)
                              if name.startswith(osp.basename(path) + '_archived_')]
            self.created.append(path)

        return run_mkdir_and_rename

    def claim(self, folder):
        """Lock ``folder``, which the run uses as it is (a resumed run's experiment folder)."""
        self.locks.claim(folder)

    def release(self):
        self.locks.release_all()

    def undo(self):
        """Remove what this run created and give archived folders their names back."""
        logger = logging.getLogger(LOGGER_NAME)
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            handler.close()  # the log file lies inside the experiment folder
            logger.removeHandler(handler)
        for path in reversed(self.created):
            shutil.rmtree(path, ignore_errors=True)
        for archived, original in self.archived:
            if osp.isdir(archived) and not osp.exists(original):
                os.rename(archived, original)
        for parent in reversed(self.parents):
            if osp.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
