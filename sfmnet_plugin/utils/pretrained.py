"""Find the ImageNet weight files that the perceptual loss (VGG) and LPIPS (AlexNet) need, on local disk.

torchvision downloads these files on first use, which fails on machines without network access, and a
silently random backbone would make every perceptual number meaningless. So the plugin never downloads:
it looks for the file, in this order,

1. the explicit path given in the option file (an error if that file does not exist: the user meant it);
2. ``$SFMNET_PRETRAINED_DIR/<filename>``;
3. torchvision's own cache, ``torch.hub.get_dir()/checkpoints/<filename>`` (``$TORCH_HOME/hub/checkpoints``),
   where a machine with network access would have downloaded it,

and otherwise raises a :class:`FileNotFoundError` that names the file, its download URL and where to put it.
"""
import logging
import os
import warnings
from dataclasses import dataclass

import torch
from torchvision.models import get_model_weights

PRETRAINED_DIR_ENV_VAR = 'SFMNET_PRETRAINED_DIR'


@dataclass(frozen=True)
class PretrainedFile:
    """A weight file the plugin needs and where it is published."""

    filename: str
    url: str

    @classmethod
    def torchvision(cls, model_name):
        """The ImageNet weights that ``torchvision.models.<model_name>(pretrained=True)`` would download.

        This is the file that BasicSR's VGG and lpips' trunks are built from (e.g. ``vgg19-dcbb9e9d.pth``,
        ``alexnet-owt-7be5be79.pth``); torchvision's weight table is asked rather than a copy of its hashes.
        """
        url = get_model_weights(model_name).IMAGENET1K_V1.url
        return cls(filename=os.path.basename(url), url=url)


def torch_hub_checkpoint_dir():
    """The folder where torchvision caches downloaded weights, which it reads without a network access."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints')


def resolve_pretrained_file(pretrained, explicit_path=None, option_name=None):
    """Return the local path of ``pretrained`` (a :class:`PretrainedFile`), see the module docstring for the order.

    ``option_name`` is the option-file key (or ``--flag``) that sets ``explicit_path``; only used in the error message.
    """
    if explicit_path:
        explicit_path = os.path.expanduser(str(explicit_path))
        if os.path.isfile(explicit_path):
            return explicit_path
        raise FileNotFoundError(f'{option_name or "weights path"}: no file at {explicit_path!r} '
                                f'(expected {pretrained.filename}, from {pretrained.url}).')

    candidates = []
    if os.environ.get(PRETRAINED_DIR_ENV_VAR):
        candidates.append(os.path.join(os.path.expanduser(os.environ[PRETRAINED_DIR_ENV_VAR]), pretrained.filename))
    candidates.append(os.path.join(torch_hub_checkpoint_dir(), pretrained.filename))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate

    if not option_name:
        how_to_point = ''
    elif option_name.startswith('--'):  # a command-line flag, not an option-file key
        how_to_point = f'pass {option_name}, '
    else:
        how_to_point = f'set {option_name!r} in the options, '
    raise FileNotFoundError(
        f'Pretrained weights {pretrained.filename} not found; looked at: {", ".join(candidates)}. '
        f'The file is not downloaded automatically: fetch it from {pretrained.url} on a machine with network access, '
        f'then {how_to_point}or put it in ${PRETRAINED_DIR_ENV_VAR}, or in {torch_hub_checkpoint_dir()}.')


def warn_random_weights(component):
    """Say loudly, in the training log and as a Python warning, that ``component`` has random weights."""
    message = (f'{component} uses a RANDOMLY INITIALISED backbone (a test-only option): '
               'its values are meaningless and must never be reported.')
    logging.getLogger('basicsr').warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)
