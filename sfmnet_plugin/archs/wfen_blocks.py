"""Building blocks of WFEN (Li et al., "Efficient Face Super-Resolution via Wavelet-based Feature Enhancement
Network", ACM MM 2024): Haar wavelet transforms, the wavelet down-/up-sampling units and the two-attention
transformer block.

Re-implemented from the written specification of the official code (PRIS-CV/WFEN, ``models/arch/wfen.py`` and
``models/arch/blocks.py``; ``docs/fidelity.md`` Part W). Module and parameter names are the official ones (typos
included, e.g. ``channel_tranformation``) so that the released state dict loads without renaming. Plain
``reshape``/``permute`` replace the official ``einops`` calls.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfmnet_plugin.archs.restormer_blocks import ChannelLayerNorm, GatedFeedForward


class _QKVAttention(nn.Module):
    """Shared layers of the two attentions: 1x1 conv to q, k, v, a 3x3 depth-wise conv, a 1x1 output projection
    (no biases), and a learnable temperature (official shape ``1 x 1 x 1``, initialised to 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(1, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3, bias=False)
        self.project_out = nn.Conv2d(channels, channels, 1, bias=False)

    def _qkv(self, x: Tensor):
        return self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)


class GlobalChannelAttention(_QKVAttention):
    """The official ``GSA``: multi-head channel attention over the whole image.

    Per head (``C / heads`` channels): q, k L2-normalised over the pixels, ``attn = relu(temperature * q k^T)``
    (a ``c x c`` matrix; ReLU, not softmax), ``out = attn v``. The heads are concatenated head-major and then
    re-ordered channel-major (``(head c) -> (c head)``: channel ``i`` of head ``h`` goes to ``i * heads + h``)
    before ``project_out``, as the official code does.
    """

    def __init__(self, channels: int, num_heads: int):
        super().__init__(channels)
        if channels % num_heads:
            raise ValueError(f'GSA channels ({channels}) must be divisible by num_heads ({num_heads}).')
        self.num_heads = num_heads

    def forward(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape  # -1 for the batch below: it stays dynamic in a traced (ONNX) graph
        q, k, v = (t.reshape(-1, self.num_heads, c // self.num_heads, h * w) for t in self._qkv(x))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.relu(q @ k.transpose(-2, -1) * self.temperature)  # B x heads x c x c
        out = (attn @ v).reshape(-1, self.num_heads, c // self.num_heads, h, w)
        out = out.transpose(1, 2).reshape(-1, c, h, w)                   # (head c) -> (c head)
        return self.project_out(out)


class WindowChannelAttention(_QKVAttention):
    """The official ``RSA``: single-head channel attention inside non-overlapping ``window x window`` windows.

    Per window: q, k L2-normalised over the channels of each pixel, ``attn = relu(temperature * q^T k)`` (``C x C``),
    ``out = v attn``. With ``shifts`` the input is rolled by ``-ceil(window / 2)`` pixels on both axes first and
    the result rolled back by ``floor(window / 2)`` (the official ``-w // 2`` / ``w // 2``): equal for even windows,
    but a window of 1 rolls by -1 and back by 0, leaving the output shifted by one pixel (circularly) on both axes.
    ``symmetric_shift=True`` rolls back by exactly what was rolled (+1 for a window of 1; even windows unchanged).
    """

    def __init__(self, channels: int, window_size: int, shifts: bool, symmetric_shift: bool = False):
        super().__init__(channels)
        self.window_size = window_size
        self.shift_in = -(-window_size // 2) if shifts else 0          # official: roll by (-w) // 2
        back = self.shift_in if symmetric_shift else window_size // 2  # official: roll back by w // 2
        self.shift_back = back if shifts else 0

    def forward(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape  # -1 for the batch below: it stays dynamic in a traced (ONNX) graph
        ws = self.window_size
        if h % ws or w % ws:
            raise ValueError(f'WFEN window attention got a {h}x{w} feature map, not divisible by its window {ws}.')
        if self.shift_in:
            x = torch.roll(x, shifts=(-self.shift_in, -self.shift_in), dims=(2, 3))

        def windows(t):  # B x C x H x W -> B x (H/ws W/ws) x (ws ws) x C
            t = t.reshape(-1, c, h // ws, ws, w // ws, ws).permute(0, 2, 4, 3, 5, 1)
            return t.reshape(-1, (h // ws) * (w // ws), ws * ws, c)

        q, k, v = (windows(t) for t in self._qkv(x))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.relu(q.transpose(-2, -1) @ k * self.temperature)  # B x windows x C x C
        out = (v @ attn).reshape(-1, h // ws, w // ws, ws, ws, c).permute(0, 5, 1, 3, 2, 4).reshape(-1, c, h, w)
        if self.shift_back:
            out = torch.roll(out, shifts=(self.shift_back, self.shift_back), dims=(2, 3))
        return self.project_out(out)


class FrequencyDualTransformer(nn.Module):
    """The official ``FDT`` (shared depth 1): a window-attention half, then a global-attention half.

    Each half: ``a = attn(norm_0(x))``; ``x = ffn(norm_2(a + x)) + a``. The skip around the feed-forward carries the
    attention output ``a``, not ``a + x``: the block input reaches the output only through ``norm_2`` (official).
    ``full_residual=True`` adds it back (``s = a + x``; ``x = ffn(norm_2(s)) + s``, the usual pre-norm residual).
    The ``modules_*`` (window) and ``modulec_*`` (global) dictionaries keep the official key names.
    """

    def __init__(self, channels: int, window_size: int, shifts: bool, num_heads: int,
                 symmetric_shift: bool = False, full_residual: bool = False):
        super().__init__()
        self.full_residual = full_residual
        self.modules_ffd = nn.ModuleDict({'ffd0': GatedFeedForward(channels)})
        self.modules_att = nn.ModuleDict({'att_0': WindowChannelAttention(channels, window_size, shifts,
                                                                          symmetric_shift)})
        self.modules_norm = nn.ModuleDict({'norm_0': ChannelLayerNorm(channels), 'norm_2': ChannelLayerNorm(channels)})
        self.modulec_ffd = nn.ModuleDict({'ffd0': GatedFeedForward(channels)})
        self.modulec_att = nn.ModuleDict({'att_0': GlobalChannelAttention(channels, num_heads)})
        self.modulec_norm = nn.ModuleDict({'norm_0': ChannelLayerNorm(channels), 'norm_2': ChannelLayerNorm(channels)})

    def _half(self, x: Tensor, attention: nn.Module, ffn: nn.Module, norms: nn.ModuleDict) -> Tensor:
        attended = attention(norms['norm_0'](x))
        summed = attended + x
        return ffn(norms['norm_2'](summed)) + (summed if self.full_residual else attended)

    def forward(self, x: Tensor) -> Tensor:
        x = self._half(x, self.modules_att['att_0'], self.modules_ffd['ffd0'], self.modules_norm)
        return self._half(x, self.modulec_att['att_0'], self.modulec_ffd['ffd0'], self.modulec_norm)


def haar_filters(channels: int) -> Tensor:
    """The official ``4 * channels x 1 x 2 x 2`` Haar filters, one group of four per channel (rows ``4c .. 4c+3``):
    approximation ``[[1, 1], [1, 1]]``, then ``[[1, -1], [1, -1]]``, ``[[1, 1], [-1, -1]]``, ``[[1, -1], [-1, 1]]``."""
    signs = torch.tensor([[[1., 1.], [1., 1.]], [[1., -1.], [1., -1.]], [[1., 1.], [-1., -1.]], [[1., -1.], [-1., 1.]]])
    return signs.unsqueeze(1).repeat(channels, 1, 1, 1)


class HaarWavelet(nn.Module):
    """One-level 2-D Haar transform per channel with the official fixed filters.

    ``haar_weights`` is an ``nn.Parameter`` with ``requires_grad=False`` (so it is in the state dict and in the
    official parameter count, 16 * channels values) and the transforms use the stored values. Forward
    (``rev=False``): ``B x C x H x W`` -> ``B x 4C x H/2 x W/2``, sub-band-major (``[a, h, v, d]``, each C channels),
    each 2x2 block filtered and divided by 4 (``a`` is the block mean). Inverse (``rev=True``): the transposed
    convolution, not divided, which makes it the exact inverse of the forward transform.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.haar_weights = nn.Parameter(haar_filters(channels), requires_grad=False)

    def forward(self, x: Tensor, rev: bool = False) -> Tensor:
        _, _, h, w = x.shape  # -1 for the batch below: it stays dynamic in a traced (ONNX) graph
        bands = 4 * self.channels
        if not rev:
            out = F.conv2d(x, self.haar_weights, stride=2, groups=self.channels) / 4.0
            return out.reshape(-1, self.channels, 4, h // 2, w // 2).transpose(1, 2).reshape(-1, bands, h // 2, w // 2)
        out = x.reshape(-1, 4, self.channels, h, w).transpose(1, 2).reshape(-1, bands, h, w)
        return F.conv_transpose2d(out, self.haar_weights, stride=2, groups=self.channels)


class WaveletDownsample(nn.Module):
    """The official ``WFD`` (with its 1x1 ``first_conv``): ``B x C_in x H x W`` -> ``(a, h + v + d)``, each
    ``B x C x H/2 x W/2``: the approximation and the sum of the three detail sub-bands."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.first_conv = nn.Conv2d(in_channels, channels, 1)
        self.HaarWavelet = HaarWavelet(channels)

    def forward(self, x: Tensor):
        a, h, v, d = self.HaarWavelet(self.first_conv(x)).chunk(4, dim=1)
        return a, h + v + d


class WaveletUpsample(nn.Module):
    """The official ``WFU``: fuse a skip feature ``x_big`` (``B x C x H x W``) with a coarser feature ``x_small``
    (``B x C_s x H/2 x W/2``) into ``B x C x H x W``.

    ``x_big`` is Haar-transformed; ``RB`` (conv3x3-ReLU-conv3x3) refines ``h + v + d``; ``channel_tranformation``
    (1x1 convs) maps ``[x_small, a]`` to ``3C`` channels; the inverse transform takes ``[RB(h+v+d), that]`` in this
    order, so (official) the refined detail sum fills the approximation slot and the 3C fused channels the three
    detail slots.
    """

    def __init__(self, channels: int, small_channels: int):
        super().__init__()
        self.HaarWavelet = HaarWavelet(channels)
        self.InverseHaarWavelet = HaarWavelet(channels)
        self.RB = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                nn.Conv2d(channels, channels, 3, padding=1))
        fused = channels + small_channels
        self.channel_tranformation = nn.Sequential(nn.Conv2d(fused, fused, 1), nn.ReLU(),
                                                   nn.Conv2d(fused, channels * 3, 1))

    def forward(self, x_big: Tensor, x_small: Tensor) -> Tensor:
        a, h, v, d = self.HaarWavelet(x_big).chunk(4, dim=1)
        details = self.RB(h + v + d)
        fused = self.channel_tranformation(torch.cat([x_small, a], dim=1))
        return self.InverseHaarWavelet(torch.cat([details, fused], dim=1), rev=True)


def pointwise_block(channels: int) -> nn.Sequential:
    """The official ``RB1``-``RB3``: 1x1 conv, ReLU, 1x1 conv (with biases), applied to detail sums."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1))
