"""Building blocks of SFMNet (Wang et al., "Spatial-Frequency Mutual Learning for Face Super-Resolution", CVPR 2023).

Re-implemented from the written specification of the official code (``docs/fidelity.md``,
§A2); no official code is reused. Numerically relevant quirks of the official network are kept on
purpose and marked "official:" in the comments. Shapes below use ``C = num_feat`` (64 in the paper).

Blocks, in the order the network uses them:

* :class:`ConvPReLU` - head / tail / group-output convolution.
* :class:`DownSample`, :class:`UpSample` - the resolution changes of both U-Nets.
* :class:`ResBlock`, :class:`ResidualGroup` - the spatial branch's stage.
* :class:`FFTBlock` - the frequency branch's stage (amplitude/phase refinement in the Fourier domain).
* :class:`ChannelCrossAttention`, :class:`FrequencySpatialInteraction` - how frequency features reach the
  spatial branch.
"""
import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfmnet_plugin.archs.spectral import atan2_real, irfft2_real, rfft2_real

_REDUCED_PRECISION = (torch.float16, torch.bfloat16)
_NORMALIZE_EPS = 1e-12  # F.normalize's default: the norm is floored there


def _replace_non_finite(x: Tensor) -> Tensor:
    # official: NaN and +-inf all become 1e-5 (not a large number) after every FFT and interaction block.
    return torch.nan_to_num(x, nan=1e-5, posinf=1e-5, neginf=1e-5)


class ConvPReLU(nn.Module):
    """Bias-free convolution followed by a single-slope PReLU (official ``ConvBNReLU2D`` with act='PReLU').

    ``B x in_ch x H x W -> B x out_ch x H x W``. Also used as the output layer of both branches, where the
    PReLU acts on the residual image (official quirk, §A10 item 7).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)
        self.act = nn.PReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class DownSample(nn.Module):
    """Halve the resolution: 3x3 conv, space-to-depth, then a 1x1 conv back to ``C`` channels; no activation.

    ``B x C x H x W -> B x C x H/2 x W/2`` (``H`` and ``W`` even).

    The three steps are linear and bias-free, so they are computed as the one 4x4 stride-2 convolution they
    compose to (:meth:`folded_kernel`, built from the two official weights on every call, so checkpoints and
    gradients are those of the two convs): 4 C^2 multiply-adds per input pixel instead of 10 C^2.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.channel_reduce = nn.Conv2d(4 * num_feat, num_feat, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.folded_kernel(), stride=2, padding=1)

    def count_macs(self, args, out: Tensor) -> int:
        """Multiply-adds of the official two convolutions for one call (``sfmnet_plugin.utils.profiling`` counts
        these, the papers' convention, although the folded convolution does fewer)."""
        full_resolution_outputs = out.numel() * 4  # the 3x3 conv's output: C channels at 2H' x 2W'
        return (full_resolution_outputs * self.conv.in_channels * 9
                + out.numel() * self.channel_reduce.in_channels)

    def folded_kernel(self) -> Tensor:
        """``C x C x 4 x 4``: output (i, j) of the 3x3 conv -> pixel_unshuffle -> 1x1 chain reads input rows
        ``2i-1 .. 2i+2`` (and columns alike); the 1x1 weight of channel ``4c + 2 dy + dx`` (pixel_unshuffle's
        order) scales the 3x3 kernel of channel ``c`` placed at offset ``(dy, dx)``."""
        out_ch = self.channel_reduce.out_channels
        reduce = self.channel_reduce.weight.reshape(out_ch, -1, 2, 2)  # out x C x dy x dx
        return cast(Tensor, sum(
            _placed_in_4x4(torch.einsum('oc,cikl->oikl', reduce[:, :, dy, dx], self.conv.weight), dy, dx)
            for dy in (0, 1) for dx in (0, 1)))


def _placed_in_4x4(kernel: Tensor, dy: int, dx: int) -> Tensor:
    """``O x I x 3 x 3`` -> ``O x I x 4 x 4`` with ``kernel`` at offset ``(dy, dx)`` and zeros elsewhere: the values of
    ``F.pad(kernel, (dx, 1 - dx, dy, 1 - dy))``, built by concatenation because the TorchScript ONNX exporter loses
    the shape of a padded tensor and cannot export a convolution whose kernel shape it does not know."""
    column = kernel.new_zeros(kernel.shape[0], kernel.shape[1], 3, 1)
    kernel = torch.cat([column, kernel] if dx else [kernel, column], dim=3)
    row = kernel.new_zeros(kernel.shape[0], kernel.shape[1], 1, 4)
    return torch.cat([row, kernel] if dy else [kernel, row], dim=2)


class UpSample(nn.Module):
    """Double the resolution: 1x1 conv to ``4C`` channels, depth-to-space, PReLU.

    ``B x C x H x W -> B x C x 2H x 2W``. (official: the x2 up-sampler uses a 1x1 kernel.)
    """

    def __init__(self, num_feat: int):
        super().__init__()
        self.channel_expand = nn.Conv2d(num_feat, 4 * num_feat, 1)
        self.act = nn.PReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(F.pixel_shuffle(self.channel_expand(x), 2))


class ResBlock(nn.Module):
    """``relu(conv(relu(conv(x))) + x)`` with two bias-free 3x3 convs. ``B x C x H x W -> B x C x H x W``."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # In place on fresh conv outputs (official too): saves two B x C x H x W allocations per block.
        out = self.conv2(F.relu_(self.conv1(x)))
        return F.relu_(out.add_(x))


class ResidualGroup(nn.Module):
    """The spatial-branch stage: residual blocks, a conv+PReLU, and a learnably scaled identity skip.

    ``y = out_conv(resblocks(x)) + skip_scale * x``, ``B x C x H x W -> B x C x H x W``; ``skip_scale`` starts at 1.
    """

    def __init__(self, num_feat: int, num_resblocks: int = 2):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_resblocks)])
        self.out_conv = ConvPReLU(num_feat, num_feat)
        self.skip_scale = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.out_conv(self.resblocks(x)), x, self.skip_scale)  # one pass for "+ x * s"


def fold_phase_at_branch_cut(phase: Tensor, cut_width: float) -> Tensor:
    """The phase map that the phase refine net sees, made continuous across the negative real axis.

    ``angle()`` jumps from +pi to -pi there, and the refine net is an ordinary conv net, not a periodic one, so
    the jump reaches the output (see :class:`FFTBlock`). Within ``cut_width`` radians of the axis the phase is
    ramped linearly to 0 from both sides, so +pi and -pi give the same input (0, whose first-layer response is
    the mean of the responses to +pi and -pi: the conv is linear). Elsewhere it is returned unchanged, and
    ``cut_width == 0`` is the official function. Only the refine net's input changes: the phase the residual is
    added to is still ``angle()``, which cos/sin see periodically anyway.
    """
    if cut_width == 0:
        return phase
    edge = math.pi - cut_width
    ramp = torch.sign(phase) * (edge / cut_width) * (math.pi - phase.abs())
    return torch.where(phase.abs() > edge, ramp, phase)


def _spectral_refine_net(num_feat: int) -> nn.Sequential:
    """Conv3x3 -> LeakyReLU(0.1) -> Conv3x3, applied to an amplitude or phase map as if it were an image."""
    return nn.Sequential(
        nn.Conv2d(num_feat, num_feat, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(num_feat, num_feat, 3, padding=1),
    )


class FFTBlock(nn.Module):
    """The frequency-branch stage: residual refinement of the amplitude and phase of the feature spectrum.

    ``B x C x H x W -> B x C x H x W``. In order (§A2.6):

    1. ``z = in_conv(x) + 1e-8`` (1x1 conv);
    2. ``Z = rfft2(z, norm='backward')``: complex ``B x C x H x (W//2+1)``, unscaled, DC at (0, 0), no shift;
    3. amplitude ``A = |Z|`` and phase ``P = angle(Z)``, each refined residually by its own conv net
       (``A + g_A(A)``, ``P + g_P(P)``) that treats the half-spectrum grid as a zero-padded image;
    4. back to a complex spectrum, ``A cos P + 1e-8`` and ``A sin P + 1e-8``, plus another 1e-8 on the real part;
    5. ``abs(irfft2(., s=(H, W)))``, then ``out_conv`` (1x1) plus the block input, then NaN/inf -> 1e-5.

    The 1e-8 constants and the ``abs`` after the inverse transform are official quirks kept for parity.

    Precision: the FFTs, ``abs``, ``angle``, ``cos``/``sin`` and the amplitude/phase additions always run in float32
    with autocast off (the CPU has no half-precision FFT, cuFFT's only takes power-of-two sizes). The refine conv
    nets follow a bfloat16 autocast (bfloat16 has float32's range, so the raw amplitudes fit; the nets only add a
    residual to the float32 maps) and stay float32 under float16 autocast, where the raw amplitudes (the DC term
    is a sum over all H*W pixels) would overflow. ``torch.compile`` leaves the Fourier part eager: inductor
    (torch 2.14) fails to compile the backward of ``abs`` and ``angle`` taken of one spectrum.

    Conditioning: ``angle`` jumps by 2 pi across the negative real axis and the phase conv net is not periodic,
    so a coefficient whose imaginary part is within rounding of 0 (on the negative side) flips its phase between
    +pi and -pi when the block input moves by 1e-7; that one bin then moves the network output by up to ~1e-2
    (measured: ``sfmnet_plugin.utils.numerics.input_sensitivity``). It is the official function's own discontinuity:
    any continuous replacement differs from it near the axis. ``phase_cut_width > 0`` is such a replacement
    (:func:`fold_phase_at_branch_cut`; same parameters, so official weights load); 0 is the official function.
    """

    def __init__(self, num_feat: int, phase_cut_width: float = 0.0):
        super().__init__()
        if not 0 <= phase_cut_width < math.pi:
            raise ValueError(f'phase_cut_width must be in [0, pi) radians, got {phase_cut_width!r}.')
        self.phase_cut_width = float(phase_cut_width)
        # True: the transforms as real DFT matmuls (sfmnet_plugin.archs.spectral), for ONNX export; set by export_onnx.
        self.dft_by_matmul = False
        self.in_conv = nn.Conv2d(num_feat, num_feat, 1)
        self.amplitude_refine = _spectral_refine_net(num_feat)
        self.phase_refine = _spectral_refine_net(num_feat)
        self.out_conv = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        restored = self.refine_in_fourier_domain(self.in_conv(x) + 1e-8)
        return _replace_non_finite(self.out_conv(restored) + x)

    @torch.compiler.disable
    def refine_in_fourier_domain(self, z: Tensor) -> Tensor:
        """Steps 2-5 up to the ``abs``: ``B x C x H x W`` -> ``B x C x H x W`` (float32 or wider)."""
        height, width = z.shape[-2:]
        device_type = z.device.type
        # bfloat16 autocast reaches the refine nets; float16 (range too small for raw amplitudes) does not.
        refine_in_bfloat16 = (torch.is_autocast_enabled(device_type)
                              and torch.get_autocast_dtype(device_type) == torch.bfloat16)
        with torch.autocast(device_type=device_type, enabled=False):
            if z.dtype in _REDUCED_PRECISION:
                z = z.float()
            if self.dft_by_matmul:
                real, imag = rfft2_real(z)
                amplitude, phase = torch.sqrt(real * real + imag * imag), atan2_real(imag, real)
            else:
                spectrum = torch.fft.rfft2(z, norm='backward')
                amplitude, phase = spectrum.abs(), spectrum.angle()
            with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=refine_in_bfloat16):
                amplitude_residual = self.amplitude_refine(amplitude)
                phase_residual = self.phase_refine(fold_phase_at_branch_cut(phase, self.phase_cut_width))
            amplitude = amplitude + amplitude_residual  # float32 + (bfloat16 or float32) -> float32
            phase = phase + phase_residual
            real = amplitude * torch.cos(phase) + 1e-8
            imag = amplitude * torch.sin(phase) + 1e-8
            if self.dft_by_matmul:
                return irfft2_real(real + 1e-8, imag, (height, width)).abs()
            spectrum = torch.complex(real, imag) + 1e-8
            return torch.fft.irfft2(spectrum, s=(height, width), norm='backward').abs()


class ChannelCrossAttention(nn.Module):
    """Multi-head "transposed" cross-attention: attention between channels, not between pixels (Restormer-style).

    ``forward(query_source, key_value_source)``, both ``B x C x H x W`` -> ``B x C x H x W``. Queries come from
    ``query_source``, keys and values from ``key_value_source`` (1x1 conv then 3x3 depthwise conv, no bias).
    Per head (``C / num_heads`` channels), Q and K are L2-normalised over the ``H*W`` positions (the norms are
    applied to the logits: the same function), the ``(C/heads) x (C/heads)`` logits are scaled by a learnable
    per-head temperature (init 1, no 1/sqrt(d)), softmaxed over key channels and applied to V, then a 1x1 conv
    projects the result. Cost is linear in H*W.
    """

    def __init__(self, num_feat: int, num_heads: int = 8):
        super().__init__()
        if num_feat % num_heads:
            raise ValueError(f'num_feat={num_feat} is not divisible by num_heads={num_heads}.')
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.query = nn.Conv2d(num_feat, num_feat, 1, bias=False)
        self.query_dwconv = nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=num_feat, bias=False)
        self.key_value = nn.Conv2d(num_feat, 2 * num_feat, 1, bias=False)
        self.key_value_dwconv = nn.Conv2d(2 * num_feat, 2 * num_feat, 3, padding=1, groups=2 * num_feat, bias=False)
        self.project_out = nn.Conv2d(num_feat, num_feat, 1, bias=False)

    def forward(self, query_source: Tensor, key_value_source: Tensor) -> Tensor:
        batch, channels, height, width = query_source.shape
        query = self.query_dwconv(self.query(query_source))
        key, value = self.key_value_dwconv(self.key_value(key_value_source)).chunk(2, dim=1)
        # Channel index c splits head-major: channels [0, C/heads) form head 0, and so on.
        query, key, value = (
            t.reshape(batch, self.num_heads, channels // self.num_heads, height * width) for t in (query, key, value))
        # cos(q_i, k_j) * temperature, as F.normalize(q) @ F.normalize(k)^T would give it, but the norms divide the
        # small C/heads x C/heads logits instead of the two B x C x H*W operands (less memory traffic; backward too).
        query_norm = torch.linalg.vector_norm(query, dim=-1, keepdim=True).clamp_min(_NORMALIZE_EPS)
        key_norm = torch.linalg.vector_norm(key, dim=-1, keepdim=True).clamp_min(_NORMALIZE_EPS)
        scale = self.temperature / (query_norm * key_norm.transpose(-2, -1))
        attention = (query @ key.transpose(-2, -1)) * scale  # B x heads x C/heads x C/heads
        attention = attention.softmax(dim=-1)
        out = (attention @ value).reshape(batch, channels, height, width)
        return self.project_out(out)


class FrequencySpatialInteraction(nn.Module):
    """Frequency-spatial interaction block (the paper's FSIB; official ``FuseBlock7``): frequency -> spatial only.

    ``forward(spatial, frequency)``, both ``B x C x H x W`` -> fused ``B x C x H x W`` that replaces the spatial
    feature (the frequency branch never receives anything back; §A10 item 3):

    1. ``s = spatial_conv(spatial)``, ``f = frequency_conv(frequency)`` (3x3 convs with bias);
    2. ``s = s + attn(s, f)`` (queries from spatial, keys/values from frequency), then
       ``f = f + attn(f, s)`` using the *updated* ``s`` and the *same* attention module (official, issue #35);
    3. fine fusion: ``[g_s, g_f] = sigmoid(conv(conv(cat[s, f])))``, output ``s * g_s + f * g_f``, NaN/inf -> 1e-5.

    The official block owns a second attention module that its forward never calls. With
    ``keep_unused_attention=True`` it is kept as ``unused_attention`` so official checkpoints load strictly
    (and the parameter count is the official one); it never receives gradients.
    """

    def __init__(self, num_feat: int, num_heads: int = 8, keep_unused_attention: bool = True):
        super().__init__()
        self.spatial_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.frequency_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.cross_attention = ChannelCrossAttention(num_feat, num_heads)
        self.unused_attention = ChannelCrossAttention(num_feat, num_heads) if keep_unused_attention else None
        # official: no activation between the two gate convs.
        self.gate = nn.Sequential(
            nn.Conv2d(2 * num_feat, num_feat, 3, padding=1),
            nn.Conv2d(num_feat, 2 * num_feat, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, spatial: Tensor, frequency: Tensor) -> Tensor:
        spatial = self.spatial_conv(spatial)
        frequency = self.frequency_conv(frequency)
        spatial = spatial + self.cross_attention(spatial, frequency)
        frequency = frequency + self.cross_attention(frequency, spatial)
        spatial_gate, frequency_gate = self.gate(torch.cat([spatial, frequency], dim=1)).chunk(2, dim=1)
        return _replace_non_finite(spatial * spatial_gate + frequency * frequency_gate)
