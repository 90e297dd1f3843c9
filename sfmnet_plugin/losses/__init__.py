"""The plugin's losses (``LOSS_REGISTRY``): every ``*_loss.py`` module here is imported and registered."""
from sfmnet_plugin.utils.registration import import_modules_with_suffix

registered_modules = import_modules_with_suffix(__name__, __path__, '_loss')
