"""Import every module of a subpackage whose name ends with a suffix, as BasicSR does.

BasicSR fills its registries by importing ``*_arch.py``, ``*_dataset.py``, ``*_model.py`` and
``*_loss.py`` files; the plugin's subpackages follow the same convention so a new component is
registered by dropping a correctly named file into the right folder.
"""
import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType


def import_modules_with_suffix(package_name: str, package_path: Iterable[str], suffix: str) -> list[ModuleType]:
    """Import ``package_name.<module>`` for every module in ``package_path`` ending with ``suffix``."""
    return [
        importlib.import_module(f'{package_name}.{info.name}')
        for info in sorted(pkgutil.iter_modules(package_path), key=lambda info: info.name)
        if info.name.endswith(suffix)
    ]
