"""The one guard every tool's outputs go through: plan every output first, check the plan, then write.

A tool (``sfmnet-infer``, ``-restore``, ``-benchmark``, ``-export``, ``-convert-official``, ``-demo``, the
preparation tools) names its output folder and its inputs, then every file it will write
(:meth:`OutputPlan.add`), before it writes anything. :meth:`OutputPlan.check` refuses, in one
:class:`~sfmnet_plugin.utils.output_paths.OutputPathError` line naming the option, the path and what to do:

* an output folder that is a file, that is one of the inputs, or that holds an input (directly, where the tools
  write their files);
* an output file that is an input (spelt any way: links and ``..`` resolved);
* two outputs of the same run with one name (``a.png`` and ``a.jpg`` both giving ``a.png``): the later one would
  silently replace the earlier, so both sources are named;
* an output name that is a symbolic link (writing it would change the file it points to, or replace the user's
  link), and a folder to be written into that is a link below the output folder;
* a file or folder the run would replace or remove that this tool did not create (:func:`remove_our_folder`:
  the preparation tools' owner marker :data:`OWNER_MARKER`, used by every tool that removes);
* an output folder on a read-only file system, without write permission or on a full disk (probed, nothing
  left behind); a disk that fills up while the tool writes is an error naming the file, and the unfinished file
  is removed (:func:`~sfmnet_plugin.utils.atomic.atomic_write`).

Files are then written by :func:`sfmnet_plugin.utils.atomic.atomic_write` (a temporary name, then a rename; the
same permissions, 0666 less the umask, for every format). Folders the plan creates are recorded, and a run that
fails before it wrote anything removes them again (:meth:`OutputPlan.__exit__`): a run that cannot start leaves
nothing behind. One lock serves every writer of a folder: :class:`sfmnet_plugin.utils.run_lock.FolderLock`,
the training run lock, also held by the demo on its output folder and by the preparation tools on the folder they
build (:func:`lock_folder_being_built`).
"""
import os
import shutil
import tempfile
from os import path as osp

from sfmnet_plugin.utils.output_paths import OutputPathError, output_write_error
from sfmnet_plugin.utils.run_lock import FolderLock

# "made by an sfmnet-plugin tool", holding the PID of the run that made it; it stays in the finished output, the
# only sign that a tool may replace or remove the folder (a user's folder holding a file named data.mdb is not ours)
OWNER_MARKER = '.sfmnet_output'


class NotOurOutputError(OutputPathError):
    """A path the tools were asked to replace or remove, but did not create."""


def mark_as_ours(folder):
    """Put the owner marker (this process's PID) into ``folder``, which this run created."""
    marker = osp.join(folder, OWNER_MARKER)
    try:
        with open(marker, 'w', encoding='ascii') as f:
            f.write(f'{os.getpid()}\n')
    except OSError as error:  # a full disk: name the folder
        raise output_write_error(marker, error) from error


def looks_like_ours(folder):
    """True if ``folder`` (not a link) carries the owner marker."""
    return osp.isdir(folder) and not osp.islink(folder) and osp.isfile(osp.join(folder, OWNER_MARKER))


def refuse_unless_ours(folder, action='delete'):
    """Raise :class:`NotOurOutputError` if ``folder`` exists and was not made by a tool of the plugin."""
    if osp.lexists(folder) and not looks_like_ours(folder):
        raise NotOurOutputError(f'{folder} exists but was not created by this tool; refusing to {action} it. '
                                'Move it away or choose another output.')


def remove_our_folder(folder):
    """Delete ``folder`` if it is ours (see :func:`looks_like_ours`); otherwise raise :class:`NotOurOutputError`."""
    refuse_unless_ours(folder)
    delete_marker_last(folder)


def delete_marker_last(folder):
    """Delete our ``folder``, its owner marker last: a deletion killed half-way leaves a folder the next run still
    recognises as ours and removes."""
    for entry in os.scandir(folder):
        if entry.name == OWNER_MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)
    shutil.rmtree(folder)


def make_our_folder(folder):
    """Create ``folder`` (which must not exist) and mark it as made by this run: only such folders are removed."""
    os.makedirs(folder)
    mark_as_ours(folder)
    return folder


def lock_folder_being_built(folder):
    """Hold the run lock on ``folder`` itself (its directory, so no lock file ends up in the output); the
    holder's PID is read from the owner marker. Raises
    :class:`~sfmnet_plugin.utils.run_lock.RunFolderInUseError` while another live process builds it."""
    return FolderLock(folder, lock_name=None, holder_file=OWNER_MARKER).acquire()


def _real(path):
    return osp.realpath(osp.abspath(path))


def _holds(folder, path):
    """True if ``path`` (a file or folder, its link resolved) lies directly in ``folder``, where the tools write."""
    return _real(osp.dirname(osp.abspath(path))) == _real(folder) or osp.dirname(_real(path)) == _real(folder)


def _existing_ancestor(path):
    path = osp.abspath(path)
    while not osp.exists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def probe_writable(folder, option='--output'):
    """Raise :class:`OutputPathError` if files cannot be created in ``folder`` (or in the nearest existing folder
    above it, where ``folder`` will be created): a read-only file system, no permission, a full disk (no free
    block or inode). The probe is a temporary file, removed at once."""
    existing = _existing_ancestor(folder)
    if not osp.isdir(existing):
        raise OutputPathError(f'{option} {folder}: {existing} is a file, not a folder; choose a folder.')
    try:
        handle, probe = tempfile.mkstemp(prefix='.sfmnet_write_probe_', dir=existing)
    except OSError as error:
        raise OutputPathError(f'{option} {folder}: {output_write_error(existing, error)} Choose a writable folder.'
                              ) from error
    os.close(handle)
    os.remove(probe)
    disk = os.statvfs(existing)
    if disk.f_bavail == 0:  # a full disk: say so now, not after the minutes of work that precede the first write
        raise OutputPathError(f'{option} {folder}: the disk of {existing} is full (no free space); free some space '
                              'or choose another disk.')


class OutputPlan:
    """The outputs one run will write, checked against its inputs and each other before anything is written.

    ``folder``: the output folder (None for a tool that writes single files); ``inputs``: ``{label: path}`` or
    ``[(label, path)]`` of every input file or folder (None paths are ignored); ``option``: how the user named the
    output (for messages).
    Use as a context manager around the run: folders made through :meth:`make_folder` are removed again if the run
    fails while they are still empty.
    """

    def __init__(self, folder=None, inputs=None, option='--output'):
        self.folder = folder
        self.option = option
        pairs = (inputs or {}).items() if isinstance(inputs, dict) else (inputs or ())
        self.inputs = [(label, path) for label, path in pairs if path]
        self.planned = []  # (path, source)
        self.created = []

    def add(self, path, source=None):
        """Plan the output file ``path`` (made from ``source``, for messages); :meth:`check` checks the plan."""
        self.planned.append((path, source))
        return path

    def add_during_run(self, outputs):
        """Plan ``[(path, source)]`` whose names are known only mid-run (a file per detected face) and check them at
        once against the inputs and every output planned before; refused ones (OutputPathError) are not planned."""
        seen = {_real(path): source for path, source in self.planned}
        for path, source in outputs:
            self._check_name(path, source, seen)
        self.planned += outputs

    def _check_names(self):
        seen = {}
        for path, source in self.planned:
            self._check_name(path, source, seen)

    def _check_name(self, path, source, seen):
        key = _real(path)
        if key in seen:
            earlier_source = seen[key]
            raise OutputPathError(
                f'{self.option}: two outputs of this run have the name {path}'
                + (f' (from {earlier_source} and {source})' if earlier_source or source else '')
                + '; the second would replace the first: rename one input or write them separately.')
        seen[key] = source
        self._check_file(path)

    def _check_file(self, path):
        for label, item in self.inputs:
            if _real(path) == _real(item) or (osp.exists(path) and osp.exists(item) and osp.samefile(path, item)):
                raise OutputPathError(f'{self.option} {path} is the {label} {item}: writing it would destroy the '
                                      f'input; choose another {self.option}.')
        if osp.islink(path):
            raise OutputPathError(f'{self.option}: {path} is a symbolic link (to {os.readlink(path)}); writing it '
                                  'would replace the link or the file it points to: remove the link or choose '
                                  'another folder.')
        if osp.isdir(path):
            raise OutputPathError(f'{self.option}: {path} already exists as a folder, where this run writes a file; '
                                  f'move it away or choose another {self.option}.')
        if self.folder is not None:  # a link among the folders between the output folder and the file
            parent, top = osp.dirname(osp.abspath(path)), osp.abspath(self.folder)
            while parent.startswith(top + os.sep):
                if osp.islink(parent):
                    raise OutputPathError(f'{self.option}: {parent} is a symbolic link (to {os.readlink(parent)}); '
                                          'outputs are never written through a link: remove it.')
                parent = osp.dirname(parent)

    def check(self, writable=True):
        """Check the output folder, then every planned output (see the module docstring) and, with ``writable``,
        that files can be created there. Call after every output was planned, before anything is written."""
        if self.folder is not None:
            self._check_folder()
        self._check_names()
        if writable:
            folders = [self.folder] if self.folder is not None else [osp.dirname(osp.abspath(path))
                                                                   for path, _ in self.planned]
            for folder in dict.fromkeys(folders):
                probe_writable(folder, self.option)
        return self

    def _check_folder(self):
        folder = self.folder
        if osp.lexists(folder) and not osp.isdir(folder):
            raise OutputPathError(f'{self.option} {folder}: is a file, not a folder; choose a folder for the '
                                  'outputs.')
        for label, item in self.inputs:
            if osp.isdir(item) and _real(item) == _real(folder):
                raise OutputPathError(f'{self.option} {folder} is the {label} {item}: the outputs would be written '
                                      f'among the inputs; choose another {self.option}.')
            if _holds(folder, item):
                raise OutputPathError(f'{self.option} {folder} holds the {label} {item}: the outputs would be '
                                      f'written among the inputs; choose a folder that holds no input.')

    def make_folder(self, folder=None):
        """``os.makedirs`` of ``folder`` (default: the output folder), remembering what this run created."""
        target = osp.abspath(folder or self.folder)
        missing, folder = [], target
        while not osp.exists(folder):
            missing.append(folder)
            folder = osp.dirname(folder)
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            self.created.append(path)
        return target

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None:  # the run failed: remove the folders it created while they are still empty
            for path in reversed(self.created):
                try:
                    os.rmdir(path)
                except OSError:  # not empty: the run wrote outputs there before it failed, and they stay
                    break
        return False
