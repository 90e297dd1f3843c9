"""SISN: "Face Hallucination via Split-Attention in Split-Attention Network" (Lu et al., ACM MM 2021).

Re-implemented from the official code (``mdswyz/SISN-Face-Hallucination``, MIT: ``model/sisn.py`` ``Net(opt)`` with
``option.py``'s ``make_template`` sizes; ``docs/fidelity.md`` Part S has the facts). With the defaults :class:`SISN` is
the official x4 network: 8,524,379 parameters (8,755,035 at x8) under the official state-dict names, so the official
checkpoints load once DataParallel's ``module.`` prefix is removed (``sfmnet_plugin.checkpoints`` does it).

Data flow at x8 (C = 64, G = 10 groups of B = 10 blocks)::

    lr (B x 3 x 16 x 16, [0, 1]) --x 255--> the official pixel range 0..255
    nearest x8 (the official solver does it before the network)            3 x 128 x 128
    sub_mean   1x1 conv: minus 255 x the DIV2K RGB mean                      3 x 128 x 128
    head       space-to-depth by 8 (``DownBlock``), conv 3x3 192 -> 64         64 x 16 x 16
    body       G x ESAG (B x ISAB, conv 3x3; + ISAB on the skip), conv 3x3   64 x 16 x 16, + x
    tail       3 x (conv 3x3 64 -> 256, pixel shuffle 2), conv 3x3 64 -> 3   3 x 128 x 128
    add_mean   1x1 conv: plus the mean  --/ 255--> SR in [0, 1] (not clamped)

The official network takes and returns 0..255 pixels (``rgb_range`` 255); here that convention lives inside
:meth:`SISN.forward`, so SISN has the family's contract: LR face in [0, 1], SR in [0, 1]. The nearest upsampling is
the official training and test scripts' step outside their ``Net``; after it the space-to-depth gives the head conv
``scale^2`` identical copies of each LR pixel.
"""
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.sisn_blocks import SpaceToDepth, SplitAttentionGroup, mean_shift

RGB_RANGE = 255.0  # the official pixel range
RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the official MeanShift's mean (DIV2K's), std 1


def _upsampler(scale: int, channels: int) -> nn.Sequential:
    """The official ``Upsampler`` (no activation): per factor 2 (or the one factor 3), conv 3x3 then pixel shuffle."""
    factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
    layers = []
    for factor in factors:
        layers += [nn.Conv2d(channels, factor * factor * channels, 3, padding=1), nn.PixelShuffle(factor)]
    return nn.Sequential(*layers)


@ARCH_REGISTRY.register()
class SISN(nn.Module):
    """SISN generator (see the module docstring).

    Args:
        upscale: the scale factor, a power of two or 3 (the official ``Upsampler``'s): 4 (the official default and
            the released weights) or 8. It sets the head conv's input width (``3 upscale^2``) and the upsampler.
        num_groups, num_blocks, num_feat: ESAGs, ISABs per ESAG and channels (the official ``make_template``: 10, 10,
            64; its ``reduction`` 16 is never used by the network).
        freeze_mean_shift: False (official): the two MeanShift convs are parameters the optimiser trains, as in the
            official code, whose attempt to freeze them has no effect; True freezes them at their constructed values
            (``requires_grad`` off; the state dict is the same).

    ``forward(lr)``: ``B x 3 x h x w`` in [0, 1] -> ``B x 3 x (h * upscale) x (w * upscale)`` in [0, 1], not clamped.
    """

    def __init__(self, upscale: int = 4, num_groups: int = 10, num_blocks: int = 10, num_feat: int = 64,
                 freeze_mean_shift: bool = False):
        super().__init__()
        if not isinstance(upscale, int) or upscale < 2 or (upscale != 3 and upscale & (upscale - 1)):
            raise ValueError(f'SISN upscale must be a power of two or 3 (its upsampler), got {upscale!r}.')
        self.upscale = upscale
        # registration order = the official state-dict order: sub_mean, add_mean, head, body, tail
        self.sub_mean = mean_shift(RGB_MEAN, sign=-1, rgb_range=RGB_RANGE)
        self.add_mean = mean_shift(RGB_MEAN, sign=1, rgb_range=RGB_RANGE)
        self.head = nn.Sequential(SpaceToDepth(upscale), nn.Conv2d(3 * upscale ** 2, num_feat, 3, padding=1))
        self.body = nn.Sequential(*[SplitAttentionGroup(num_feat, num_blocks) for _ in range(num_groups)],
                                  nn.Conv2d(num_feat, num_feat, 3, padding=1))
        self.tail = nn.Sequential(_upsampler(upscale, num_feat), nn.Conv2d(num_feat, 3, 3, padding=1))
        if freeze_mean_shift:
            for parameter in (*self.sub_mean.parameters(), *self.add_mean.parameters()):
                parameter.requires_grad_(False)

    def forward(self, lr: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR in [0, 1] -> ``B x 3 x (h s) x (w s)`` SR in [0, 1] (not clamped)."""
        x = F.interpolate(lr * RGB_RANGE, scale_factor=self.upscale, mode='nearest')  # official input, 0..255
        x = self.head(self.sub_mean(x))   # B x C x h x w
        x = self.body(x) + x
        return self.add_mean(self.tail(x)) / RGB_RANGE


__all__ = ['SISN']
