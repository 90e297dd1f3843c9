"""LPIPS (Zhang et al. 2018) for BasicSR validation, with the backbone weights read from a local file.

``lpips`` ships only its linear heads and lets torchvision download the ImageNet backbone, which fails offline
(and a random backbone would give meaningless numbers). Here the backbone is built random and then overwritten
with the torchvision state dict found by :func:`sfmnet_plugin.utils.pretrained.resolve_pretrained_file`. The
linear heads (``lpips/weights/v0.1/<net>.pth`` of the installed package) are read by the plugin's loader too, so
that a damaged install is one line naming the file (and refused if non-finite) instead of torch's traceback.
"""
import functools
import re
import warnings
from os import path as osp

import lpips
import torch
from basicsr.metrics.metric_util import reorder_image
from basicsr.utils.registry import METRIC_REGISTRY

from sfmnet_plugin.metrics.face_psnr_ssim_metric import rgb_to_y_rounded
from sfmnet_plugin.utils.pretrained import PretrainedFile, resolve_pretrained_file, warn_random_weights
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

LPIPS_PROTOCOLS = ('standard', 'sfmnet')
# lpips' trunk name -> the torchvision model whose ImageNet weights it uses
_TORCHVISION_TRUNKS = {'alex': 'alexnet', 'vgg': 'vgg16', 'squeeze': 'squeezenet1_1'}
_SFMNET_CROP_BORDER = 8


def load_torchvision_trunk(lpips_model, state_dict):
    """Copy a torchvision classifier state dict (``features.<i>.*``) into the lpips trunk (``slice<k>.<i>.*``).

    lpips splits torchvision's ``features`` into ``slice1..sliceN`` and keeps each layer's index as its module
    name (alexnet: slice1 = features[0:2], slice2 = [2:5], ...), so the index maps a key back to its source.
    Every trunk parameter must be present; the classifier part of the file is not used by LPIPS.
    """
    trunk_state = {}
    for key in lpips_model.net.state_dict():
        _, layer_index, parameter = key.split('.', 2)
        source_key = f'features.{layer_index}.{parameter}'
        if source_key not in state_dict:
            raise KeyError(f'{source_key!r} is missing: not a torchvision {lpips_model.pnet_type} state dict?')
        trunk_state[key] = state_dict[source_key]
    lpips_model.net.load_state_dict(trunk_state)


def linear_layers_file(net):
    """The ``lpips`` package's own file of the v0.1 linear heads of ``net`` (where ``lpips.LPIPS`` reads them)."""
    return osp.join(osp.dirname(osp.abspath(lpips.__file__)), 'weights', 'v0.1', f'{net}.pth')


def load_linear_layers(lpips_model, net):
    """Load the v0.1 linear heads of ``net`` into ``lpips_model``, every one of them, or fail with one line."""
    path = linear_layers_file(net)
    reinstall = 'The file comes with the lpips package: reinstall it (pip install --force-reinstall lpips).'
    try:
        state_dict = load_torch_file(path, what=f'LPIPS-{net} linear layers')
    except (UnsafeOrInvalidFileError, FileNotFoundError) as error:
        raise type(error)(f'{error} {reinstall}') from error
    # lin0, lin1, ... (the file's names; the ModuleList ``lins`` holds the same modules)
    heads = [key for key in lpips_model.state_dict() if re.match(r'lin\d+\.', key)]
    missing = [key for key in heads if key not in state_dict]
    if not isinstance(state_dict, dict) or missing:
        raise UnsafeOrInvalidFileError(f'LPIPS-{net} linear layers {path}: not the LPIPS v0.1 {net} heads (no '
                                       f'{missing[0] if missing else "state dict"}). {reinstall}')
    try:
        lpips_model.load_state_dict({key: state_dict[key] for key in heads}, strict=False)
    except RuntimeError as error:  # shapes of another network
        raise UnsafeOrInvalidFileError(f'LPIPS-{net} linear layers {path}: not the LPIPS v0.1 {net} heads '
                                       f'({str(error).splitlines()[0]}). {reinstall}') from error


@functools.cache
def lpips_network(net, weights_path, device):
    """LPIPS v0.1 on ``device`` with its trunk from ``weights_path`` (None: random); one per process and key."""
    with warnings.catch_warnings():  # lpips builds its trunk with torchvision's deprecated pretrained= arguments
        warnings.filterwarnings('ignore', category=UserWarning, module='torchvision.models._utils')
        model = lpips.LPIPS(pretrained=False, net=net, version='0.1', pnet_rand=True, verbose=False)
    load_linear_layers(model, net)
    if weights_path is None:
        warn_random_weights(f'LPIPS-{net}')  # here, so that it is said once and not for every image
    else:
        try:  # a corrupt, non-finite or wrong file: one line naming it
            load_torchvision_trunk(model, load_torch_file(weights_path, what=f'LPIPS-{net} weights'))
        except (KeyError, RuntimeError, AttributeError) as error:
            raise UnsafeOrInvalidFileError(f'LPIPS-{net} weights {weights_path}: not torchvision '
                                           f'{_TORCHVISION_TRUNKS[net]} weights ({str(error).splitlines()[0]}).'
                                           ) from error
    return model.to(device).eval()


def _standard_lpips_input(bgr):
    """RGB in [-1, 1] as 1×3×H×W, the input LPIPS was calibrated on (``lpips.im2tensor``)."""
    return lpips.im2tensor(bgr[..., ::-1])


def _sfmnet_lpips_input(bgr):
    """SFMNet's ``eval_lpips.py`` input: rounded uint8 Y, cropped by 8 px, as float in [16, 235], not rescaled.

    The official code passes this 2-D array to LPIPS, whose ScalingLayer broadcasts it to 1×3×H×W; the
    explicit expand gives the same values.
    """
    crop = _SFMNET_CROP_BORDER
    y = rgb_to_y_rounded(bgr[crop:-crop, crop:-crop, ::-1])
    return torch.from_numpy(y).float().expand(1, 3, *y.shape)


_LPIPS_INPUT = {'standard': _standard_lpips_input, 'sfmnet': _sfmnet_lpips_input}


@METRIC_REGISTRY.register()
def calculate_lpips(img,
                    img2,
                    net='alex',
                    weights_path=None,
                    protocol='standard',
                    device=None,
                    random_backbone_for_tests=False,
                    input_order='HWC',
                    weights_option='weights_path',
                    **kwargs):
    """LPIPS distance (lower is better) between two uint8 BGR images, as BasicSR passes them.

    Args:
        img, img2 (ndarray): uint8 BGR images (SR and GT), HWC unless ``input_order='CHW'``.
        net (str): LPIPS trunk, 'alex' (the face-SR convention) | 'vgg' | 'squeeze'.
        weights_path (str, optional): Local torchvision trunk weights (``alexnet-owt-7be5be79.pth`` for alex);
            default: ``$SFMNET_PRETRAINED_DIR`` or ``torch.hub.get_dir()/checkpoints``; missing -> FileNotFoundError.
        protocol (str): 'standard' (default): LPIPS v0.1 on RGB in [-1, 1], no crop, as ``lpips_2dirs.py``.
            'sfmnet': SFMNet's ``eval_lpips.py`` exactly (docs/fidelity.md §A8.2): the Y channel, 8-px crop,
            values in [16, 235] copied to three channels. **Non-standard numbers**: only comparable with SFMNet's
            paper tables, never with standard LPIPS.
        device (str, optional): Default: 'cuda' if available, else 'cpu'.
        random_backbone_for_tests (bool): Random trunk, for offline tests only (warns; meaningless values).
        weights_option (str): the setting that gives ``weights_path`` where the caller reads it (an option-file key,
            or a ``--flag``), named by the missing-file message.
    """
    if protocol not in LPIPS_PROTOCOLS:
        raise ValueError(f'Unknown LPIPS protocol {protocol!r}; choose one of {LPIPS_PROTOCOLS}.')
    if net not in _TORCHVISION_TRUNKS:
        raise ValueError(f'Unknown LPIPS net {net!r}; choose one of {tuple(_TORCHVISION_TRUNKS)}.')
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes are different: {img.shape}, {img2.shape}.')
    if random_backbone_for_tests:
        if weights_path:
            raise ValueError('calculate_lpips: set either weights_path or random_backbone_for_tests.')
        resolved_path = None
    else:
        resolved_path = resolve_pretrained_file(
            PretrainedFile.torchvision(_TORCHVISION_TRUNKS[net]), weights_path, option_name=weights_option)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = lpips_network(net, resolved_path, device)

    to_input = _LPIPS_INPUT[protocol]
    with torch.no_grad():
        distance = model(to_input(reorder_image(img, input_order)).to(device),
                         to_input(reorder_image(img2, input_order)).to(device))
    return float(distance.item())
