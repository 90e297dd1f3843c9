"""PSNR and SSIM on the Y channel under the three protocols that face-SR papers report, selectable per option file.

Numbers from different protocols are not comparable (the same images differ by tenths of a dB):

=========  ================================  =====================  =====================  ===========================
protocol   Y channel (BT.601, 'MATLAB')      border crop            PSNR                   SSIM
=========  ================================  =====================  =====================  ===========================
sfmnet     uint8, **rounded**                8 px, whatever scale   20·log10(255/√MSE)     skimage defaults: 7×7 uniform
                                                                                           window, sample covariance
sparnet    uint8, **truncated**              none                   10·log10(255²/MSE)     skimage Gaussian σ 1.5,
                                                                                           population covariance
dic        float, not rounded (BasicSR)      ``crop_border`` =      10·log10(255²/MSE)     MATLAB-style 11×11 Gaussian
                                             scale (required)                              σ 1.5 (BasicSR)
=========  ================================  =====================  =====================  ===========================

'sfmnet' follows SFMNet's ``utils/metric.py`` (docs/fidelity.md §A8.1), 'sparnet' SPARNet's ``psnr_ssim.py`` (§B6;
also CTCNet's, WFEN's), and 'dic' is BasicSR's ``calculate_psnr``/``calculate_ssim`` with ``test_y_channel=True``.
All take the uint8 images that BasicSR's validation passes (``tensor2img``: rounded, **BGR**, HWC); the
quantisation is therefore BasicSR's rounding (SPARNet's own scripts read PNGs that its test script saved with
truncation, a step outside the metric).
"""
import numpy as np
from basicsr.metrics.metric_util import reorder_image
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicsr.utils.registry import METRIC_REGISTRY
from skimage.metrics import structural_similarity

PROTOCOLS = ('sfmnet', 'sparnet', 'dic')
_DEFAULT_CROP_BORDER = {'sfmnet': 8, 'sparnet': 0}
_SSIM_OPTIONS = {
    'sfmnet': {},
    'sparnet': {'gaussian_weights': True, 'sigma': 1.5, 'use_sample_covariance': False},
}
_Y_WEIGHTS = (65.481, 128.553, 24.966)  # ITU-R BT.601 for R, G, B in [0, 255] (MATLAB rgb2ycbcr)


def rgb_to_y_rounded(rgb):
    """Y = round((65.481 R + 128.553 G + 24.966 B) / 255 + 16) as uint8 in [16, 235] (SFMNet, DIC code).

    The float64 operations run in the same order as the official code, so ties round identically
    (``np.round``: half to even).
    """
    return (np.dot(rgb, _Y_WEIGHTS) / 255.0 + 16.0).round().astype(np.uint8)


def rgb_to_y_truncated(rgb):
    """Y = 16 + rgb · (weights / 255), truncated to uint8 as SPARNet's ``rgb2y_matlab`` does.

    Truncation lowers Y by 0.5 on average compared with rounding: grey 128 gives 125 here, 126 rounded.
    """
    return (16 + np.matmul(rgb, np.array(_Y_WEIGHTS) / 255.0)).astype(np.uint8)


_Y_CONVERSION = {'sfmnet': rgb_to_y_rounded, 'sparnet': rgb_to_y_truncated}


def _check_protocol(protocol, img, img2):
    if protocol not in PROTOCOLS:
        raise ValueError(f'Unknown face metric protocol {protocol!r}; choose one of {PROTOCOLS}.')
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes are different: {img.shape}, {img2.shape}.')
    if img.dtype != np.uint8 or img2.dtype != np.uint8:
        raise TypeError(f'Face metrics expect quantised uint8 images, got {img.dtype} and {img2.dtype}.')


def _dic_crop_border(crop_border):
    if crop_border is None:
        raise ValueError("Protocol 'dic' crops `scale` pixels on each side: set crop_border to the scale factor.")
    return crop_border


def _y_channels(img, img2, protocol, crop_border, input_order):
    """Both images as cropped Y channels (HxW uint8) of the given protocol. Inputs are BGR, as BasicSR passes them."""
    crop = _DEFAULT_CROP_BORDER[protocol] if crop_border is None else crop_border
    y_channels = []
    for image in (img, img2):
        image = reorder_image(image, input_order=input_order)
        if image.shape[2] != 3:
            raise ValueError(f'Face metrics need 3-channel BGR images, got shape {image.shape}.')
        if crop:
            image = image[crop:-crop, crop:-crop]
        y_channels.append(_Y_CONVERSION[protocol](image[..., ::-1]))  # BGR -> RGB
    return y_channels


@METRIC_REGISTRY.register()
def calculate_face_psnr(img, img2, protocol='sfmnet', crop_border=None, input_order='HWC', **kwargs):
    """PSNR (dB) on the Y channel under a face-SR protocol (see the module docstring); inf for identical images.

    Args:
        img, img2 (ndarray): uint8 BGR images (SR and GT), HWC unless ``input_order='CHW'``.
        protocol (str): 'sfmnet' (default) | 'sparnet' | 'dic'.
        crop_border (int, optional): Pixels removed on each side; default 8 (sfmnet), 0 (sparnet); required
            for 'dic' (= the scale factor).
    """
    _check_protocol(protocol, img, img2)
    if protocol == 'dic':
        return calculate_psnr(img, img2, _dic_crop_border(crop_border), input_order=input_order, test_y_channel=True)
    y, y2 = _y_channels(img, img2, protocol, crop_border, input_order)
    mse = np.mean((y.astype(np.float64) - y2.astype(np.float64))**2)
    if mse == 0:
        return float('inf')
    if protocol == 'sfmnet':
        return float(20 * np.log10(255.0 / np.sqrt(mse)))
    return float(10 * np.log10(255.0**2 / mse))


@METRIC_REGISTRY.register()
def calculate_face_ssim(img, img2, protocol='sfmnet', crop_border=None, input_order='HWC', **kwargs):
    """SSIM on the Y channel under a face-SR protocol (see the module docstring).

    Arguments as :func:`calculate_face_psnr`.
    """
    _check_protocol(protocol, img, img2)
    if protocol == 'dic':
        return calculate_ssim(img, img2, _dic_crop_border(crop_border), input_order=input_order, test_y_channel=True)
    y, y2 = _y_channels(img, img2, protocol, crop_border, input_order)
    return float(structural_similarity(y, y2, data_range=255, **_SSIM_OPTIONS[protocol]))
