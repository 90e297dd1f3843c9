"""SISN's building blocks: split attention, the split-attention block (ISAB), its group (ESAG), space-to-depth and
the mean shift (``docs/fidelity.md`` §S2).

Official sources (``mdswyz/SISN-Face-Hallucination``, MIT): ``Internal_feature_Split_Attention``
(``model/utils/ISA.py``), ``Internal_feature_Split_Attention_Block`` (``model/utils/isab.py``),
``External_internal_Split_Attention_Group`` (``model/sisn.py``), ``DownBlock`` (``model/ops.py``) and ``MeanShift``
(``model/utils/common.py``). The attribute names are the official ones, so the official
state-dict keys come out as they are.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

RADIX = 4  # the official block's default, which SISN never changes


class SplitAttention(nn.Module):
    """Split attention (ResNeSt-style, one cardinal group) over ``radix`` parallel 3x3 convolutions.

    ``u = ReLU(bn0(conv(x)))`` (a grouped 3x3 conv C -> radix x C, no bias: split r convolves the r-th ``C / radix``
    input channels) is cut into ``radix`` splits ``u_r``; a gate
    ``a = conv1x1_2(ReLU(bn1(conv1x1_1(avgpool(sum_r u_r)))))`` (C -> I -> radix x C, ``I = max(C radix / 4, 32)``) is
    soft-maxed across the splits per channel; ``out = sum_r a_r * u_r``.
    """

    def __init__(self, channels: int, radix: int = RADIX):
        super().__init__()
        inter_channels = max(channels * radix // 4, 32)  # the official reduction factor 4, floor 32
        self.radix = radix
        self.conv = nn.Conv2d(channels, channels * radix, 3, padding=1, groups=radix, bias=False)
        self.bn0 = nn.BatchNorm2d(channels * radix)
        self.relu = nn.ReLU()
        self.conv1x1_1 = nn.Conv2d(channels, inter_channels, 1)
        self.bn1 = nn.BatchNorm2d(inter_channels)
        self.conv1x1_2 = nn.Conv2d(inter_channels, channels * radix, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``B x C x h x w`` -> ``B x C x h x w``."""
        splits = self.relu(self.bn0(self.conv(x))).chunk(self.radix, dim=1)  # radix x (B x C x h x w)
        pooled = F.adaptive_avg_pool2d(sum(splits), 1)                       # B x C x 1 x 1
        logits = self.conv1x1_2(self.relu(self.bn1(self.conv1x1_1(pooled))))  # B x (radix C) x 1 x 1, split-major
        batch = x.shape[0]
        weights = logits.view(batch, self.radix, -1).softmax(dim=1).view(batch, -1, 1, 1).chunk(self.radix, dim=1)
        return sum(weight * split for weight, split in zip(weights, splits))


class SplitAttentionBlock(nn.Module):
    """The official ISAB: a bottleneck residual block with split attention in the middle.

    ``ReLU(bn3(conv3(SplitAttention(ReLU(bn1(conv1(x)))))) + x)``, 1x1 convs without bias, BatchNorm. ``skip`` (a 1x1
    conv) exists in the official block for a change of width, which SISN never has: it is never called and kept only so
    that the official weights load strictly.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = SplitAttention(channels)
        self.conv3 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.skip = nn.Conv2d(channels, channels, 1, bias=False)  # unused (official)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.relu(self.bn1(self.conv1(x))))
        return self.relu(self.bn3(self.conv3(out)) + x)


class SplitAttentionGroup(nn.Module):
    """The official ESAG: ``num_blocks`` ISABs and a 3x3 conv, plus a split-attention block (``IA``) on the skip path:
    ``body(x) + IA(x)``."""

    def __init__(self, channels: int, num_blocks: int):
        super().__init__()
        self.body = nn.Sequential(*[SplitAttentionBlock(channels) for _ in range(num_blocks)],
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.IA = SplitAttentionBlock(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.IA(x)


class SpaceToDepth(nn.Module):
    """The official ``DownBlock``: ``B x C x H x W`` -> ``B x (s^2 C) x H/s x W/s``, channels ordered (row offset,
    column offset, channel)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        s = self.scale
        x = x.view(batch, channels, height // s, s, width // s, s).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(batch, channels * s * s, height // s, width // s)


def mean_shift(rgb_mean, sign: int, rgb_range: float = 255.0) -> nn.Conv2d:
    """The official ``MeanShift``: a 1x1 conv, identity weights, bias ``sign * rgb_range * mean`` (std 1).

    Its parameters stay trainable, as in the official code, where ``self.requires_grad = False`` sets an attribute of
    the module and freezes nothing (the optimiser gets them too).
    """
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        conv.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))
    return conv


__all__ = ['SpaceToDepth', 'SplitAttention', 'SplitAttentionBlock', 'SplitAttentionGroup', 'mean_shift']
