"""The plugin's architectures (``ARCH_REGISTRY``): every ``*_arch.py`` module here is imported and registered."""
from sfmnet_plugin.utils.registration import import_modules_with_suffix

registered_modules = import_modules_with_suffix(__name__, __path__, '_arch')
