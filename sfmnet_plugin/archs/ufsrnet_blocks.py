"""UFSRNet's building blocks: the Haar transform pair and the distillation/NAF block (``docs/fidelity.md`` §U2).

Official sources (``Aichiniuroumian/UFSRNet``, ``models/common.py``): ``dwt_init``/``iwt_init``, ``LayerNorm2d`` and
``NAFBlock1``/``NAFBlock2``. ``NAFBlock1`` (64 channels) and ``NAFBlock2`` (128) are one structure at two widths, so
here they are one class with a ``channels`` argument.
"""
import torch
from torch import Tensor, nn


def haar_dwt(x: Tensor) -> Tensor:
    """``B x C x H x W`` -> ``B x 4C x H/2 x W/2``: the sub-bands LL, HL, LH, HH stacked along the channels.

    With ``a, b, c, d`` the pixels at (even row, even column), (odd, even), (even, odd), (odd, odd) of each 2x2 cell:
    ``LL = (a + b + c + d) / 2``, ``HL = (-a - b + c + d) / 2``, ``LH = (-a + b - c + d) / 2``,
    ``HH = (a - b - c + d) / 2``.
    """
    a, b = x[:, :, 0::2, 0::2] / 2, x[:, :, 1::2, 0::2] / 2
    c, d = x[:, :, 0::2, 1::2] / 2, x[:, :, 1::2, 1::2] / 2
    return torch.cat((a + b + c + d, -a - b + c + d, -a + b - c + d, a - b - c + d), dim=1)


def haar_iwt(x: Tensor) -> Tensor:
    """The exact inverse of :func:`haar_dwt`: ``B x 4C x h x w`` -> ``B x C x 2h x 2w``, in the input's dtype.

    The official ``iwt_init`` fills a new ``.float().cuda()`` tensor by strided assignment; here the four pixels of
    each 2x2 cell are stacked and interleaved with a reshape (no device or dtype of its own, and ONNX-friendly).
    """
    ll, hl, lh, hh = (band / 2 for band in x.chunk(4, dim=1))
    even_row = torch.stack((ll - hl - lh + hh, ll + hl - lh - hh), dim=-1)  # columns 0, 1 of each cell's row 0
    odd_row = torch.stack((ll - hl + lh - hh, ll + hl + lh + hh), dim=-1)   # row 1
    _, channels, height, width = ll.shape
    # -1 for the batch: a traced (ONNX) graph keeps it dynamic, a size read off the shape would be a constant there
    return torch.stack((even_row, odd_row), dim=3).reshape(-1, channels, 2 * height, 2 * width)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel (biased variance, eps 1e-6), with a per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        normed = centred / (centred.pow(2).mean(dim=1, keepdim=True) + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * normed + self.bias.view(1, -1, 1, 1)


def _conv(in_ch: int, out_ch: int, kernel_size: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, groups=groups)


def _simple_gate(x: Tensor) -> Tensor:
    """NAFNet's SimpleGate: the first half of the channels times the second half."""
    first, second = x.chunk(2, dim=1)
    return first * second


class DistillNAFBlock(nn.Module):
    """The official ``NAFBlock1``/``NAFBlock2``: an information-distillation branch and a NAFNet block, side by side.

    ``C`` = ``channels`` (64 or 128), ``D = C / 2``; LReLU = LeakyReLU(0.05). Both branches read the input ``u``:

    * distillation (IMDN-style): ``r0 = u``, ``r_k = LReLU(c{k}_r(r_{k-1}) + r_{k-1})`` and
      ``d_k = LReLU(c{k}_d(r_{k-1}))`` for k = 1..3 (3x3 C -> C and 1x1 C -> D), ``d_4 = LReLU(c4(r_3))`` (3x3 C -> D);
      ``dist = c5(cat(d_1..d_4))`` (1x1 2C -> C);
    * NAF: ``x = conv3(SCA(SG(conv2(conv1(norm1(u))))))`` (1x1 C -> 2C, depthwise 3x3, SimpleGate, channel attention
      ``x * sca(x)``, 1x1 C -> C); ``y = u + beta x``; ``z = conv5(SG(conv4(norm2(y))))`` (1x1 C -> 2C, 1x1 C -> C);
    * output: ``conv6(cat(z + u + y, u + dist))`` (1x1 2C -> C).

    ``conv0`` (3x3 C -> C) and ``gamma`` exist in the official block but are never used; they are kept so that the
    official weights load strictly. ``beta`` and ``gamma`` start at zero, as in the official code. The official
    dropouts have rate 0 (identity) and are left out (they have no parameters).
    """

    def __init__(self, channels: int):
        super().__init__()
        c, d = channels, channels // 2
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))  # unused (official)
        self.c1_d, self.c1_r = _conv(c, d, 1), _conv(c, c, 3)
        self.c2_d, self.c2_r = _conv(c, d, 1), _conv(c, c, 3)
        self.c3_d, self.c3_r = _conv(c, d, 1), _conv(c, c, 3)
        self.c4 = _conv(c, d, 3)
        self.c5 = _conv(4 * d, c, 1)
        self.act = nn.LeakyReLU(0.05)
        self.conv0 = _conv(c, c, 3)  # unused (official)
        self.conv1 = _conv(c, 2 * c, 1)
        self.conv2 = _conv(2 * c, 2 * c, 3, groups=2 * c)
        self.conv3 = _conv(c, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), _conv(c, c, 1))
        self.conv4 = _conv(c, 2 * c, 1)
        self.conv5 = _conv(c, c, 1)
        self.conv6 = _conv(2 * c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)

    def _distill(self, u: Tensor) -> Tensor:
        distilled = []
        r = u
        for reduce, refine in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(reduce(r)))
            r = self.act(refine(r) + r)
        distilled.append(self.act(self.c4(r)))
        return self.c5(torch.cat(distilled, dim=1))

    def forward(self, u: Tensor) -> Tensor:
        """``B x C x h x w`` -> ``B x C x h x w``."""
        x = _simple_gate(self.conv2(self.conv1(self.norm1(u))))
        x = self.conv3(x * self.sca(x))
        y = u + x * self.beta
        z = self.conv5(_simple_gate(self.conv4(self.norm2(y))))
        return self.conv6(torch.cat((z + u + y, u + self._distill(u)), dim=1))


__all__ = ['DistillNAFBlock', 'LayerNorm2d', 'haar_dwt', 'haar_iwt']
