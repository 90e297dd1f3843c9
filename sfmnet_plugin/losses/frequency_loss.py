"""SFMNet's Fourier-domain loss: L1 between the amplitude spectra and between the phase spectra."""
import torch
from basicsr.losses.basic_loss import l1_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


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


def amplitude_phase_l1(pred, target, weight=None, reduction='mean', eps=1e-6):
    """Unweighted L1 distances ``(amplitude, phase)`` between the spectra ``rfft2(·, norm='backward')``.

    As in the official code: the half spectrum (W//2+1 columns) of each channel, no fftshift, the raw (not
    log) amplitude, and the raw phase difference (no wrapping to [-pi, pi]), so the 'mean' runs over
    B×C×H×(W//2+1) values. ``weight`` (optional) weights the spectrum elements and must have that shape
    (or a single channel). ``eps`` only affects the phase gradient, see :func:`safe_angle`.
    """
    pred_spectrum = torch.fft.rfft2(pred, norm='backward')
    target_spectrum = torch.fft.rfft2(target, norm='backward')
    amplitude = l1_loss(pred_spectrum.abs(), target_spectrum.abs(), weight, reduction=reduction)
    phase = l1_loss(safe_angle(pred_spectrum, eps), safe_angle(target_spectrum, eps), weight, reduction=reduction)
    return amplitude, phase


@LOSS_REGISTRY.register()
class FrequencyLoss(nn.Module):
    """``loss_weight · (amplitude_weight · L1(|F(pred)|, |F(gt)|) + phase_weight · L1(∠F(pred), ∠F(gt)))``.

    The defaults are SFMNet's (``0.01·(L_amp + L_pha)``, applied to the frequency-branch output). The
    forward value equals the official formula; only the phase gradient near |F| = 0 differs (finite here,
    NaN/inf there), see :func:`safe_angle`.

    Args:
        loss_weight (float): Overall weight. Default: 0.01.
        amplitude_weight (float): Relative weight of the amplitude term. Default: 1.0.
        phase_weight (float): Relative weight of the phase term. Default: 1.0.
        reduction (str): 'mean' | 'sum' | 'none' over the spectrum elements. Default: 'mean'.
        eps (float): Floor of |F| in the phase gradient's denominator. Default: 1e-6.
    """

    def __init__(self, loss_weight=0.01, amplitude_weight=1.0, phase_weight=1.0, reduction='mean', eps=1e-6):
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'Unsupported reduction mode: {reduction}. Supported ones are: none | mean | sum')
        self.loss_weight = loss_weight
        self.amplitude_weight = amplitude_weight
        self.phase_weight = phase_weight
        self.reduction = reduction
        self.eps = eps

    def weighted_terms(self, pred, target, weight=None):
        """The amplitude and phase terms, each multiplied by its weights: for logging them separately."""
        amplitude, phase = amplitude_phase_l1(pred, target, weight, reduction=self.reduction, eps=self.eps)
        return (self.loss_weight * self.amplitude_weight * amplitude, self.loss_weight * self.phase_weight * phase)

    def forward(self, pred, target, weight=None, **kwargs):
        """
        Args:
            pred (Tensor): (N, C, H, W) prediction.
            target (Tensor): (N, C, H, W) ground truth.
            weight (Tensor, optional): (N, C or 1, H, W//2+1) weights of the spectrum elements.
        """
        amplitude_term, phase_term = self.weighted_terms(pred, target, weight)
        return amplitude_term + phase_term
