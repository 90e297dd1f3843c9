"""A differentiable bicubic resize that reproduces ``PIL.Image.resize(size, Image.BICUBIC)``.

The official SFMNet data loader upsamples every LR face to the HR size with PIL's bicubic filter
before the network sees it, so the plugin's SFMNet does the same step inside ``forward``. PIL's
resampling is separable and linear, so each axis is one fixed matrix (``out_size x in_size``) and the
whole resize is ``W_rows @ image @ W_cols^T``: two matmuls that autograd differentiates for free.

How PIL builds one axis (``libImaging/Resample.c``, re-derived here; all arithmetic in float64):

* the cubic convolution kernel with ``a = -0.5`` and support 2;
* ``scale = in_size / out_size``; when downsampling (``scale > 1``) the kernel is stretched by
  ``scale`` (antialiasing), so it spans ``2 * scale`` input pixels on each side;
* output pixel ``i`` is centred at input coordinate ``(i + 0.5) * scale`` (pixel centres, not corners);
* the taps are the input pixels ``[floor(centre - support + 0.5), floor(centre + support + 0.5))``
  clipped to the image, and the weights of the surviving taps are divided by their sum. PIL does not
  pad or mirror the border: clipping and renormalising *is* its edge handling.

For ``"F"`` (float32) images PIL uses these float64 weights directly, which is what the matrices
reproduce (to float32 rounding). For 8-bit images PIL also quantises the weights to fixed point and
rounds and clips the intermediate image to uint8 after the first (horizontal) pass, so results on
uint8 data differ from this float version by up to about one grey level.
"""
import functools

import numpy as np
import torch
from torch import Tensor

_CUBIC_A = -0.5
_CUBIC_SUPPORT = 2.0


def _cubic_kernel(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5``, as PIL defines it (zero beyond |x| >= 2)."""
    x = np.abs(x)
    near = ((_CUBIC_A + 2.0) * x - (_CUBIC_A + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * _CUBIC_A
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=64)
def pil_bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """The ``out_size x in_size`` float64 matrix of PIL's bicubic resampling along one axis."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f'Resize sizes must be positive, got {in_size} -> {out_size}.')
    scale = in_size / out_size
    kernel_stretch = max(scale, 1.0)  # antialiasing: widen the kernel when downsampling
    support = _CUBIC_SUPPORT * kernel_stretch
    weights: np.ndarray = np.zeros((out_size, in_size), dtype=np.float64)
    for out_index in range(out_size):
        centre = (out_index + 0.5) * scale
        # C's (int) cast truncates toward zero; the max() with 0 makes that equal to floor here.
        first = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), in_size)
        taps = np.arange(first, stop)
        tap_weights = _cubic_kernel((taps - centre + 0.5) / kernel_stretch)
        total = tap_weights.sum()
        weights[out_index, first:stop] = tap_weights / total if total != 0.0 else tap_weights
    return weights


@torch.compiler.disable  # a cache lookup, not graph code (dynamo would trace the numpy loop instead)
@functools.lru_cache(maxsize=64)
def _weights_on(in_size: int, out_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """:func:`pil_bicubic_weights` as a tensor, cached per (sizes, device, dtype) so a training loop uploads it once.

    Built outside inference mode: a cached inference tensor could not be saved for a later backward pass.
    """
    with torch.inference_mode(False):
        return torch.from_numpy(pil_bicubic_weights(in_size, out_size)).to(device=device, dtype=dtype)


def pil_bicubic_resize(images: Tensor, size) -> Tensor:
    """Resize like ``PIL.Image.resize((width, height), Image.BICUBIC)``, differentiably.

    Args:
        images: ``B x C x H_in x W_in`` floating-point tensor (any value range; nothing is clamped).
        size: ``(H_out, W_out)`` in torch order (note: PIL's ``resize`` takes ``(width, height)``),
            or one int for a square output.

    Returns:
        ``B x C x H_out x W_out`` tensor of the input's dtype and device.
    """
    if not images.is_floating_point():
        raise TypeError(f'pil_bicubic_resize needs a floating-point tensor, got {images.dtype}.')
    out_height, out_width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    in_height, in_width = images.shape[-2:]
    if (in_height, in_width) == (out_height, out_width):
        return images  # PIL returns an unchanged copy; both weight matrices would be the identity
    rows = _weights_on(in_height, out_height, images.device, images.dtype)
    cols = _weights_on(in_width, out_width, images.device, images.dtype)
    return rows @ images @ cols.transpose(0, 1)



def upsample_lr_face(lr: Tensor, upscale: int, size_multiple: int, why: str, network: str) -> Tensor:
    """The face networks' input step: ``B x C x h x w`` LR -> ``B x C x (h*upscale) x (w*upscale)`` PIL bicubic.

    The HR size must be a multiple of ``size_multiple`` (the network's stride-2 stages); otherwise a ValueError
    names ``network``, the sizes and ``why`` (the option that sets the multiple). ``upscale == 1`` passes ``lr``
    through (an input that is already upsampled).
    """
    height, width = lr.shape[-2:]
    hr_height, hr_width = height * upscale, width * upscale
    if hr_height % size_multiple or hr_width % size_multiple:
        raise ValueError(f'{network} got a {height}x{width} input at x{upscale}, i.e. a {hr_height}x{hr_width} HR '
                         f'image, but with {why} the HR height and width must be divisible by {size_multiple}.')
    return lr if upscale == 1 else pil_bicubic_resize(lr, (hr_height, hr_width))
