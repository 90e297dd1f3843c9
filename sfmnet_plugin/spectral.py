"""Phase of a Fourier spectrum with a gradient that stays finite: shared by the frequency loss and
the frequency discriminator."""
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
