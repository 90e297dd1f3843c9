"""The multi-scale patch discriminator of SPARNetHD (``docs/fidelity.md`` §B7).

A pix2pixHD-style discriminator: ``num_D`` patch discriminators look at the image at full, half, quarter ...
resolution; each is built from the SPARNet :class:`~sfmnet_plugin.archs.sparnet_blocks.ConvLayer` (reflect
padding, InstanceNorm, LeakyReLU 0.2, spectral norm on every conv). Re-implemented from the specification;
the attribute names (``D_pool.<scale>.model.<layer>``, ``score_out``) are the official ones, so the released
discriminator weights load as they are. With the defaults: 3,916,801 parameters per scale, 11,750,403 in all.
"""
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.sparnet_blocks import ConvLayer, official_init_


class PatchDiscriminator(nn.Module):
    """One scale (official ``NLayerDiscriminator``): ``B x in_ch x H x W`` -> ``n_layers + 2`` tensors.

    ``model.0``: conv in_ch -> base_ch, stride 1, bias, LeakyReLU (``B x 64 x H x W``);
    ``model.1..n``: conv stride 2, norm, LeakyReLU, channels doubling up to ``max_ch`` (``B x 512 x H/16 x W/16``
    for n = 4); ``score_out``: 3x3 conv to 1 channel without padding (``B x 1 x (H/16 - 2) x (W/16 - 2)``).
    ``forward`` returns the outputs of ``model.0..n`` followed by the logits.
    """

    def __init__(self, in_ch: int = 3, base_ch: int = 64, max_ch: int = 512, n_layers: int = 4,
                 norm_type: str = 'in', spectral_norm: bool = True):
        super().__init__()
        layers = [ConvLayer(in_ch, base_ch, 3, relu_type='leakyrelu', spectral_norm=spectral_norm)]
        channels = base_ch
        for i in range(1, n_layers + 1):
            next_channels = min(base_ch * 2 ** i, max_ch)
            layers.append(ConvLayer(channels, next_channels, 3, 'down', norm_type, 'leakyrelu',
                                    spectral_norm=spectral_norm))
            channels = next_channels
        self.model = nn.Sequential(*layers)
        self.score_out = ConvLayer(channels, 1, 3, use_pad=False, spectral_norm=spectral_norm)

    def forward(self, x: Tensor) -> list:
        features = []
        for layer in self.model:
            x = layer(x)
            features.append(x)
        features.append(self.score_out(x))
        return features


@ARCH_REGISTRY.register()
class MultiScalePatchDiscriminator(nn.Module):
    """SPARNetHD's multi-scale discriminator (official ``MultiScaleDiscriminator``).

    Args:
        in_ch, base_ch, max_ch, n_layers, norm_type, spectral_norm: of every scale (3, 64, 512, 4, 'in', True).
        num_D: number of scales (3). Scale ``k + 1`` sees scale ``k``'s input bicubic-downsampled by 2
            (``F.interpolate(scale_factor=0.5, mode='bicubic', align_corners=False)``, as the official code).
        official_init: the official N(0, 0.02) initialisation of every conv (see ``official_init_``).

    ``forward(x, return_features=True)``: ``x`` is ``B x 3 x H x W`` in [0, 1] (mapped to the official [-1, 1]
    inside, like the generator). It returns one entry per scale, full resolution first:

    * ``return_features=True`` (what a pix2pixHD-style GAN model needs): a list of ``n_layers + 2`` tensors per
      scale, the ``n_layers + 1`` intermediate feature maps (``model.0..n_layers`` outputs, for the feature
      matching loss) followed by the patch logits (for the hinge loss), i.e. ``outputs[scale][-1]`` are the
      logits and ``outputs[scale][:-1]`` the features;
    * ``return_features=False``: the logits tensor of each scale.

    The logits of a 512x512 input are 30x30, 14x14 and 6x6. Every scale's input must be at least
    ``2 ** (n_layers + 1) + 1`` pixels high and wide (33 with the defaults, so at least 132 at full resolution for
    3 scales) to leave a logit after the unpadded score conv.
    """

    def __init__(self, in_ch: int = 3, base_ch: int = 64, max_ch: int = 512, n_layers: int = 4,
                 norm_type: str = 'in', num_D: int = 3, spectral_norm: bool = True, official_init: bool = False):
        super().__init__()
        self.D_pool = nn.ModuleList([
            PatchDiscriminator(in_ch, base_ch, max_ch, n_layers, norm_type, spectral_norm) for _ in range(num_D)])
        self.min_scale_size = 2 ** (n_layers + 1) + 1
        if official_init:
            official_init_(self)

    def forward(self, x: Tensor, return_features: bool = True) -> list:
        x = x * 2 - 1  # official [-1, 1] convention
        outputs = []
        for scale, discriminator in enumerate(self.D_pool):
            if scale:
                x = F.interpolate(x, scale_factor=0.5, mode='bicubic', align_corners=False)
            if min(x.shape[-2:]) < self.min_scale_size:
                raise ValueError(
                    f'MultiScalePatchDiscriminator scale {scale} got a {x.shape[-2]}x{x.shape[-1]} image but needs at '
                    f'least {self.min_scale_size}x{self.min_scale_size}; give it images of at least '
                    f'{self.min_scale_size * 2 ** (len(self.D_pool) - 1)} pixels a side.')
            features = discriminator(x)
            outputs.append(features if return_features else features[-1])
        return outputs


__all__ = ['MultiScalePatchDiscriminator', 'PatchDiscriminator']
