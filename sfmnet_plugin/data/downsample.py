"""Make the LR face from the uint8 HR face: the one function behind stored and on-the-fly LR images.

The preparation scripts and :class:`PairedFaceDataset` both call :func:`downsample` on the same
uint8 RGB HR array, so an LR made on the fly equals the stored LR bit for bit.

* ``pil_bicubic`` (default): ``PIL.Image.resize((w // s, h // s), BICUBIC)``, antialiased with
  a = -0.5; what DIC, SPARNet, SFMNet and the Face-Hallucination-Benchmark used.
* ``matlab_bicubic``: BasicSR's MATLAB-style ``imresize`` (also antialiased, a = -0.5, other
  border handling and rounding), computed on the 0-255 values and rounded back to uint8.
"""
import numpy as np
from basicsr.utils.matlab_functions import imresize
from PIL import Image


def _pil_bicubic(hr, scale):
    height, width = hr.shape[:2]
    return np.array(Image.fromarray(hr).resize((width // scale, height // scale), Image.Resampling.BICUBIC))


def _matlab_bicubic(hr, scale):
    return np.clip(np.rint(imresize(hr, 1 / scale)), 0, 255).astype(np.uint8)


DOWNSAMPLERS = {'pil_bicubic': _pil_bicubic, 'matlab_bicubic': _matlab_bicubic}


def check_downsampler(method, where='downsampler'):
    """Raise a ValueError naming ``where`` unless ``method`` is a known downsampler."""
    if method not in DOWNSAMPLERS:
        raise ValueError(f'{where}: unknown downsampler {method!r}; expected one of {sorted(DOWNSAMPLERS)}.')


def check_divisible(height, width, scale, name):
    """Raise a ValueError naming ``name`` unless both sides of an HR image are multiples of ``scale``."""
    if height % scale or width % scale:
        raise ValueError(f'{name}: HR size {height}x{width} (h x w) is not divisible by the scale {scale}; '
                         f'crop or resize the HR images to a multiple of {scale}.')


def downsample(hr, scale, method='pil_bicubic', name='image'):
    """The ``1/scale`` LR image of an ``H x W x 3`` uint8 RGB HR image, as uint8 RGB."""
    check_downsampler(method)
    check_divisible(hr.shape[0], hr.shape[1], scale, name)
    return DOWNSAMPLERS[method](hr, scale)
