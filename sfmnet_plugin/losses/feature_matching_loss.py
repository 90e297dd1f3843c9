"""pix2pixHD's discriminator feature-matching loss, for multi-scale discriminators (SPARNetHD)."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


@LOSS_REGISTRY.register()
class MultiScaleFeatureMatchingLoss(nn.Module):
    """Mean over the discriminator's scales of the summed L1 distances between its features of fake and real images.

    ``forward(fake_outputs, real_outputs)`` takes what a multi-scale discriminator returns with its features
    (e.g. :class:`~sfmnet_plugin.archs.patch_discriminator_arch.MultiScalePatchDiscriminator` with
    ``return_features=True``): one list per scale, the intermediate feature maps followed by the logits. The logits
    (the last entry of each list) are left to the adversarial loss. Per scale, the term is
    ``sum_k mean |fake_k - real_k|`` over the intermediate maps, with the real features detached; the loss is
    ``loss_weight`` times the mean over scales. SPARNetHD (``docs/fidelity.md`` §B7) uses
    ``loss_weight`` 10 over 3 scales of 5 feature maps: ``10 * FM / 3``.

    BasicSR has no feature-matching loss (its ``MultiScaleGANLoss`` handles the logits of the same outputs).

    Args:
        loss_weight (float): weight of the loss. Default: 1.0.
        criterion (str): ``l1`` (pix2pixHD, SPARNetHD) or ``l2``.
    """

    def __init__(self, loss_weight=1.0, criterion='l1'):
        super().__init__()
        criteria = {'l1': nn.L1Loss(), 'l2': nn.MSELoss()}
        if criterion not in criteria:
            raise ValueError(f'MultiScaleFeatureMatchingLoss criterion must be one of {sorted(criteria)}, '
                             f'got {criterion!r}.')
        self.loss_weight = loss_weight
        self.criterion = criteria[criterion]

    def forward(self, fake_outputs, real_outputs):
        if len(fake_outputs) != len(real_outputs) or not fake_outputs:
            raise ValueError(f'feature matching needs the same non-zero number of scales for fake and real images, '
                             f'got {len(fake_outputs)} and {len(real_outputs)}.')
        per_scale = []
        for fake_features, real_features in zip(fake_outputs, real_outputs):
            if not isinstance(fake_features, (list, tuple)) or len(fake_features) < 2:
                raise ValueError('feature matching needs each scale as a list of feature maps followed by the logits '
                                 '(call the discriminator with return_features=True).')
            per_scale.append(sum(self.criterion(fake, real.detach())
                                 for fake, real in zip(fake_features[:-1], real_features[:-1])))
        return self.loss_weight * torch.stack(per_scale).mean()
