"""The one way the plugin changes a name of BasicSR, and the record of every name it changed.

A change rebinds one attribute of a BasicSR module or class (``basicsr.train.load_resume_state``,
``BaseModel.model_to_device``) to the plugin's replacement; site-packages is never edited. There are two scopes:

* :func:`replace_for_process`: the changes ``import sfmnet_plugin`` applies for the whole process (the ones
  basicsr 1.4.2 needs to import and load safely, :func:`sfmnet_plugin.compat.apply_import_fixes`); applying one
  again does nothing;
* :class:`RunChanges`: the changes one launcher run applies (:mod:`sfmnet_plugin.launch.session`), undone when it
  ends.

Either refuses to change a name that is already changed: every BasicSR name has one replacement, written in one
place, never a wrapper around another wrapper. ``docs/basicsr_changes.md`` lists them all.
"""

_process_changes: dict[str, object] = {}  # qualified name -> the replacement, for the whole process


class NameChangedTwiceError(RuntimeError):
    """A BasicSR name would get a second replacement."""


def qualified_name(owner, name):
    """``basicsr.train.load_resume_state`` for a module, ``basicsr.models.base_model.BaseModel.x`` for a class."""
    if isinstance(owner, type):
        return f'{owner.__module__}.{owner.__qualname__}.{name}'
    return f'{owner.__name__}.{name}'


def process_changes():
    """The qualified names :func:`replace_for_process` changed so far."""
    return sorted(_process_changes)


def replace_for_process(owner, name, value):
    """Set ``owner.name = value`` for the rest of the process, once (a second call for the name does nothing)."""
    key = qualified_name(owner, name)
    if key not in _process_changes:
        _process_changes[key] = value
        setattr(owner, name, value)


class RunChanges:
    """Names changed for one run: :meth:`replace` each, :meth:`restore` puts BasicSR's own back."""

    def __init__(self):
        self._saved = {}  # qualified name -> (owner, name, BasicSR's value)

    @property
    def names(self):
        return sorted(self._saved)

    def replace(self, owner, name, value):
        key = qualified_name(owner, name)
        if key in self._saved or key in _process_changes:
            raise NameChangedTwiceError(f'{key} is changed already; a BasicSR name has one replacement.')
        self._saved[key] = (owner, name, getattr(owner, name))
        setattr(owner, name, value)

    def restore(self):
        for owner, name, value in reversed(list(self._saved.values())):
            setattr(owner, name, value)
        self._saved.clear()
