"""PIL's bicubic resize in torch: the 8-bit version the official loaders ran, and a differentiable float one.

The official SFMNet and SPARNet data loaders upsample every 8-bit LR face to the HR size with
``PIL.Image.resize(size, Image.BICUBIC)`` on the uint8 image, so the network's input is itself an 8-bit
image. The plugin's networks do that step inside ``forward`` (:func:`upsample_lr_face`), by default bit for bit
(``lr_resize='pil_uint8'``, :func:`pil_uint8_resize`); ``lr_resize='pil_float'`` is the float resize
(:func:`pil_bicubic_resize`) without PIL's rounding and clipping, differentiable in the LR.

How PIL builds one axis (``libImaging/Resample.c``, re-derived here; all arithmetic in float64):

* the cubic convolution kernel with ``a = -0.5`` and support 2;
* ``scale = in_size / out_size``; when downsampling (``scale > 1``) the kernel is stretched by
  ``scale`` (antialiasing), so it spans ``2 * scale`` input pixels on each side;
* output pixel ``i`` is centred at input coordinate ``(i + 0.5) * scale`` (pixel centres, not corners);
* the taps are the input pixels ``[floor(centre - support + 0.5), floor(centre + support + 0.5))``
  clipped to the image, and the weights of the surviving taps are divided by their sum. PIL does not
  pad or mirror the border: clipping and renormalising *is* its edge handling.

For ``"F"`` (float32) images PIL uses these float64 weights directly, which is what
:func:`pil_bicubic_resize` reproduces (to float32 rounding). For 8-bit images (modes ``L``, ``RGB``) PIL
quantises each weight to fixed point with ``PRECISION_BITS = 32 - 8 - 2 = 22`` fractional bits, rounding half
away from zero; each output pixel is ``clip8(2**21 + sum(pixel * weight))``, where ``clip8`` shifts right by 22
bits (floor) and clips to [0, 255]. One pass runs into an 8-bit intermediate image, the other pass on it; an
axis whose size does not change is skipped (its pass would be the identity anyway). The horizontal pass runs
first unless the height shrinks by more than twice as many pixels as the width (Pillow 13's
``ImagingResampleInner``; earlier Pillow always ran it first): when upsampling, as the face networks do, every
Pillow version gives the same image. :func:`pil_uint8_resize` does the same integer arithmetic in int64
(gathers, products, sums, a clamp and an exact integer division by ``2**22``: no bit shifts, so both ONNX
exporters write it exactly), and equals PIL pixel for pixel.
The float version differs from it by the rounding of the intermediate and final images to 8 bits and the
clipping of bicubic overshoot: on real faces up to a few grey levels, and far more on the network's output.
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
        # times the reciprocal, not divided by the stretch: PIL's order of operations, so the 8-bit
        # weights below round exactly as PIL's do
        tap_weights = _cubic_kernel((taps - centre + 0.5) * (1.0 / kernel_stretch))
        total = tap_weights.sum()
        weights[out_index, first:stop] = tap_weights / total if total != 0.0 else tap_weights
    return weights


def _cached_when_eager(build):
    """``build`` behind an lru cache for eager calls (a training loop uploads its constants once), kept out of
    compiled graphs (``torch.compiler.disable``: dynamo would trace the numpy loops instead). ``torch.export`` (the
    dynamo ONNX exporter) runs such a function all the same, on fake tensors: there it is built afresh and
    becomes a constant of the graph, because a fake tensor in the cache would be every later eager call's result."""
    cached = functools.lru_cache(maxsize=64)(build)

    @torch.compiler.disable
    @functools.wraps(build)
    def lookup(*args):
        return build(*args) if torch.compiler.is_compiling() else cached(*args)

    return lookup


@_cached_when_eager
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
    # int(): a traced export sees the input size as a tensor; the weights are constants of the exported graph
    in_height, in_width = int(images.shape[-2]), int(images.shape[-1])
    if (in_height, in_width) == (out_height, out_width):
        return images  # PIL returns an unchanged copy; both weight matrices would be the identity
    rows = _weights_on(in_height, out_height, images.device, images.dtype)
    cols = _weights_on(in_width, out_width, images.device, images.dtype)
    return rows @ images @ cols.transpose(0, 1)


# PIL's fixed-point format for 8-bit images (libImaging/Resample.c): 8 bits for the result, 2 for overflow and sign.
PRECISION_BITS = 32 - 8 - 2


@functools.lru_cache(maxsize=64)
def pil_uint8_taps(in_size: int, out_size: int):
    """PIL's 8-bit bicubic taps along one axis: ``(indices, coefficients)``, both ``out_size x ksize`` int64.

    Output pixel ``i`` is ``sum_k image[indices[i, k]] * coefficients[i, k]`` before PIL's rounding; the
    coefficients are the float64 weights of :func:`pil_bicubic_weights` in fixed point with
    :data:`PRECISION_BITS` fractional bits, rounded half away from zero as PIL's ``normalize_coeffs_8bpc`` does.
    Rows with fewer taps are padded with index 0 and coefficient 0.
    """
    weights = pil_bicubic_weights(in_size, out_size)
    nonzero_rows = [np.flatnonzero(row) for row in weights]
    # PIL's own tap ranges are contiguous; a zero weight inside one (an exact kernel zero) contributes nothing
    first = np.array([taps[0] if taps.size else 0 for taps in nonzero_rows], dtype=np.int64)
    stop = np.array([taps[-1] + 1 if taps.size else 0 for taps in nonzero_rows], dtype=np.int64)
    ksize = max(int((stop - first).max()), 1)
    indices = np.minimum(first[:, None] + np.arange(ksize), in_size - 1)
    within = first[:, None] + np.arange(ksize) < stop[:, None]
    scaled = np.where(within, np.take_along_axis(weights, indices, axis=1), 0.0) * (1 << PRECISION_BITS)
    # C's (int) cast truncates toward zero, so +-0.5 then truncation is round-half-away-from-zero
    coefficients = np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64)
    return indices, coefficients


@_cached_when_eager
def _taps_on(in_size: int, out_size: int, device: torch.device):
    """:func:`pil_uint8_taps` on ``device``, one ``(indices, coefficients)`` pair of ``out_size`` int64 per tap."""
    with torch.inference_mode(False):
        indices, coefficients = pil_uint8_taps(in_size, out_size)
        return tuple((torch.from_numpy(np.ascontiguousarray(indices[:, tap])).to(device),
                      torch.from_numpy(np.ascontiguousarray(coefficients[:, tap])).to(device))
                     for tap in range(indices.shape[1]))


def _resample_uint8_axis(images: Tensor, dim: int, out_size: int) -> Tensor:
    """One PIL 8-bit pass along ``dim`` (-1: horizontal, -2: vertical) of an int64 ``... x H x W`` image in [0, 255]."""
    # int(): a traced export sees the input size as a tensor; the taps are constants of the exported graph
    taps = _taps_on(int(images.shape[dim]), out_size, images.device)
    # One gather per tap, summed (integer sums are exact in any order), not one gather of all taps unflattened to
    # (out_size, ksize): the TorchScript ONNX exporter's shape inference gives that unflatten the traced batch as
    # a fixed size, and every shape a network later takes from the image (its reshapes) is then that constant.
    terms = [images.index_select(dim, indices) * (coefficients if dim == -1 else coefficients[:, None])
             for indices, coefficients in taps]
    sums = terms[0]
    for term in terms[1:]:
        sums = sums + term
    # clip8: (sums + 2**21) >> 22 clipped to [0, 255]; clamping first makes the shift an exact division of a
    # non-negative integer. floor_divide, not div(rounding_mode=...): both ONNX exporters turn floor_divide into
    # ONNX's integer Div, while the dynamo exporter turns an integer div with a rounding mode into a float32
    # division (24-bit mantissa: a sum near 2**30 rounds up to the next multiple of 2**22, even to 256).
    top = (256 << PRECISION_BITS) - 1
    return torch.floor_divide((sums + (1 << (PRECISION_BITS - 1))).clamp(0, top), 1 << PRECISION_BITS)


def pil_uint8_resize(images: Tensor, size) -> Tensor:
    """``PIL.Image.resize((width, height), Image.BICUBIC)`` of 8-bit images, pixel for pixel, on any device.

    Args:
        images: ``B x C x H_in x W_in`` integer tensor of 8-bit values (uint8, or any integer dtype in [0, 255]);
            each channel is resized as PIL resizes the bands of an ``L`` or ``RGB`` image.
        size: ``(H_out, W_out)`` in torch order (PIL's ``resize`` takes ``(width, height)``), or one int.

    Returns:
        ``B x C x H_out x W_out`` uint8 tensor on the input's device. Not differentiable (integer arithmetic).
    """
    if images.is_floating_point() or images.is_complex() or images.dtype == torch.bool:
        raise TypeError(f'pil_uint8_resize needs an integer tensor of 8-bit values, got {images.dtype}.')
    out_height, out_width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    in_height, in_width = images.shape[-2:]
    resized = images.to(torch.int64)
    passes = [(-1, out_width, in_width), (-2, out_height, in_height)]
    if in_height - out_height > 0 and in_height - out_height > (in_width - out_width) * 2:
        passes.reverse()  # Pillow's rule: the vertical pass first when it shrinks the image the most
    for dim, out_size, in_size in passes:
        if out_size != in_size:
            resized = _resample_uint8_axis(resized, dim, out_size)
    return resized.to(torch.uint8)


LR_RESIZE_MODES = ('pil_uint8', 'pil_float')


def check_lr_resize(lr_resize: str, network: str) -> str:
    """``lr_resize`` itself, or a ValueError naming ``network``, the value and the choices."""
    if lr_resize not in LR_RESIZE_MODES:
        raise ValueError(f'{network} lr_resize must be one of {LR_RESIZE_MODES}, got {lr_resize!r}.')
    return lr_resize


def upsample_lr_face(lr: Tensor, upscale: int, size_multiple: int, why: str, network: str,
                     lr_resize: str = 'pil_uint8') -> Tensor:
    """The face networks' input step: ``B x C x h x w`` LR -> ``B x C x (h*upscale) x (w*upscale)`` PIL bicubic.

    ``lr_resize='pil_uint8'`` (default) gives the official loaders' input bit for bit: the LR in [0, 1] is taken as
    the 8-bit image it came from (``round(255 x)``, clipped to [0, 255]: exact for an 8-bit PNG read as ``u / 255``),
    resized as PIL resizes uint8 images (:func:`pil_uint8_resize`) and divided by 255. Rounding has no gradient, so
    an LR that requires one gets the float resize's (straight-through); the values stay the 8-bit ones.
    ``'pil_float'`` resizes the float values (:func:`pil_bicubic_resize`): no rounding or clipping.

    The HR size must be a multiple of ``size_multiple`` (the network's stride-2 stages); otherwise a ValueError
    names ``network``, the sizes and ``why`` (the option that sets the multiple). ``upscale == 1`` passes ``lr``
    through (an input that is already upsampled).
    """
    check_lr_resize(lr_resize, network)
    height, width = lr.shape[-2:]
    hr_height, hr_width = height * upscale, width * upscale
    if hr_height % size_multiple or hr_width % size_multiple:
        raise ValueError(f'{network} got a {height}x{width} input at x{upscale}, i.e. a {hr_height}x{hr_width} HR '
                         f'image, but with {why} the HR height and width must be divisible by {size_multiple}.')
    if upscale == 1:
        return lr
    if lr_resize == 'pil_float':
        return pil_bicubic_resize(lr, (hr_height, hr_width))
    exact = resize_as_8bit(lr, (hr_height, hr_width))
    if not (torch.is_grad_enabled() and lr.requires_grad):
        return exact
    # Straight-through: the value is the 8-bit image, the gradient that of the float resize (rounding has none).
    # ``smooth - smooth.detach()`` is exactly zero, so the value stays bit for bit the 8-bit one.
    smooth = pil_bicubic_resize(lr, (hr_height, hr_width))
    return exact + (smooth - smooth.detach())


def resize_as_8bit(images: Tensor, size) -> Tensor:
    """A float ``B x C x H x W`` image in [0, 1] taken as the 8-bit image it stands for (``round(255 x)`` clipped to
    [0, 255]: exact for an 8-bit PNG read as ``u / 255``), resized by :func:`pil_uint8_resize`, divided by 255.

    Returns the input's dtype and device; no gradient flows back to ``images``.
    """
    # float32 at least: 255 * (u / 255) rounds back to u there, not in half precision
    levels = torch.round(images.detach().to(torch.promote_types(images.dtype, torch.float32)) * 255).clamp(0, 255)
    return pil_uint8_resize(levels.to(torch.int64), size).to(images.dtype) / 255
