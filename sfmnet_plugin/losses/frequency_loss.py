"""SFMNet's Fourier-domain loss: L1 between the amplitude spectra and between the phase spectra."""
import torch
from basicsr.losses.basic_loss import l1_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from sfmnet_plugin.archs.spectral import safe_angle


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
