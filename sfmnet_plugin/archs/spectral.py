"""Fourier helpers: a phase with a finite gradient (shared by the frequency loss and the frequency discriminator),
and rfft2/irfft2 in real arithmetic (for ONNX export)."""
import functools

import numpy as np
import torch


class _SafeAngle(torch.autograd.Function):
    """``torch.angle`` of a complex tensor whose gradient stays finite where the coefficient is (almost) zero.

    The gradient of the phase with respect to (real, imag) is ``(-imag, real) / |z|**2``, i.e. 1/|z|: it
    overflows near |z| = 0 (``torch.angle`` gives NaN for a coefficient of 1e-29, for instance) and then poisons
    every weight. Below ``eps`` the phase of a coefficient is floating-point noise anyway, so the denominator is
    floored at ``eps**2``. The forward value is ``torch.angle`` itself, bit for bit.
    """

    @staticmethod
    def forward(ctx, spectrum, eps):
        ctx.save_for_backward(spectrum)
        ctx.eps = eps
        return torch.angle(spectrum)

    @staticmethod
    def backward(ctx, grad_phase):
        spectrum, = ctx.saved_tensors
        squared_magnitude = (spectrum.real**2 + spectrum.imag**2).clamp_min(ctx.eps**2)
        # torch's complex gradient convention: dL/d(real) + i·dL/d(imag) = grad · (-imag + i·real) / |z|**2
        return grad_phase * 1j * spectrum / squared_magnitude, None


def safe_angle(spectrum, eps=1e-6):
    """Phase of a complex tensor, equal to ``torch.angle`` but with a gradient bounded by ``1/eps``."""
    return _SafeAngle.apply(spectrum, eps)


# ---------------------------------------------------------------------------------------------- DFT as matmuls
# rfft2 / irfft2 written with real DFT matrices: the same transforms (norm='backward') in real arithmetic, for
# runtimes without complex tensors or a usable DFT operator (ONNX export). O(H^2 W + H W^2) per channel: a few
# percent of SFMNet's convolutions at 128x128.

@functools.lru_cache(maxsize=32)
def _dft_matrices(height, width):
    """float64 ``cos``/``sin`` tables: (C_h, S_h) of the H-point DFT, (C_w, S_w) of the W-point half spectrum,
    and (A_w, B_w) of the inverse real W-point transform (with the 1/W and the doubled non-edge bins)."""
    h = np.arange(height)
    angle_h = 2 * np.pi * np.outer(h, h) / height
    bins = width // 2 + 1
    angle_w = 2 * np.pi * np.outer(np.arange(width), np.arange(bins)) / width  # W x bins
    fold = np.full(bins, 2.0)
    fold[0] = 1.0
    if width % 2 == 0:
        fold[-1] = 1.0  # the Nyquist bin appears once
    inverse_w = angle_w.T  # bins x W
    return (np.cos(angle_h), np.sin(angle_h), np.cos(angle_w), np.sin(angle_w),
            fold[:, None] * np.cos(inverse_w) / width, fold[:, None] * np.sin(inverse_w) / width)


def _tables(height, width, like):
    return [torch.from_numpy(t).to(device=like.device, dtype=like.dtype) for t in _dft_matrices(height, width)]


def rfft2_real(x):
    """``torch.fft.rfft2(x, norm='backward')`` as ``(real, imag)``, ``B x C x H x (W//2+1)`` each."""
    # int(): TorchScript tracing (the ONNX export) sees sizes as tensors; the tables are constants of the graph
    height, width = int(x.shape[-2]), int(x.shape[-1])
    cos_h, sin_h, cos_w, sin_w, _, _ = _tables(height, width, x)
    real_w, imag_w = x @ cos_w, -(x @ sin_w)  # along W: e^{-i theta}
    real, imag = cos_h @ real_w + sin_h @ imag_w, cos_h @ imag_w - sin_h @ real_w  # along H: (C - iS)(R + iI)
    # The DC/Nyquist bins of a real signal are real: FFT libraries return +0.0 there, sums of +-0 products may
    # give -0.0, and angle() of a negative coefficient is +pi or -pi by that sign.
    return real, torch.where(torch.from_numpy(_real_bins(height, width)).to(x.device), 0.0, imag)


@functools.lru_cache(maxsize=32)
def _real_bins(height, width):
    """``H x (W//2+1)`` boolean array: True at the DC/Nyquist rows and columns (numpy: tensors made while
    tracing for export must not be cached)."""
    rows = [0] + ([height // 2] if height % 2 == 0 else [])
    columns = [0] + ([width // 2] if width % 2 == 0 else [])
    mask = np.zeros((height, width // 2 + 1), dtype=bool)
    mask[np.ix_(rows, columns)] = True
    return mask


def irfft2_real(real, imag, size):
    """``torch.fft.irfft2(torch.complex(real, imag), s=size, norm='backward')`` in real arithmetic.

    Like the C2R transform, the imaginary parts of the DC and Nyquist columns are ignored.
    """
    height, width = int(size[0]), int(size[1])
    cos_h, sin_h, _, _, inverse_cos_w, inverse_sin_w = _tables(height, width, real)
    real_h = (cos_h @ real - sin_h @ imag) / height  # along H: (C + iS)(R + iI) / H
    imag_h = (sin_h @ real + cos_h @ imag) / height
    return real_h @ inverse_cos_w - imag_h @ inverse_sin_w


def atan2_real(imag, real):
    """``torch.atan2(imag, real)`` written with ``atan`` and selections, for exporters whose atan2 translation
    differs on the negative real axis: there (``imag == 0``, ``real < 0``) the phase is +pi, as torch gives for +0.0."""
    quotient = torch.atan(imag / torch.where(real == 0, torch.ones_like(real), real))
    half_pi = torch.full_like(real, np.pi / 2)
    on_imaginary_axis = torch.where(imag > 0, half_pi, torch.where(imag < 0, -half_pi, torch.zeros_like(real)))
    left = torch.where(imag >= 0, quotient + np.pi, quotient - np.pi)
    return torch.where(real > 0, quotient, torch.where(real < 0, left, on_imaginary_axis))
