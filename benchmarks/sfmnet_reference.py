"""Frozen copy of the plugin's SFMNet computation as it was before the speed work (issue 14): the baseline.

``benchmarks/bench_arch.py`` times the plugin's network against this one side by side in one process, and
``tests/inference/test_optimised_inference.py`` checks that the optimised network still computes the same function. Only
benchmarks and tests import this module; it must never change (it is the "before" of every ratio).

Same parameter names and shapes as :class:`sfmnet_plugin.archs.sfmnet_arch.SFMNet`, so
``ReferenceSFMNet(**opts).load_state_dict(SFMNet(**opts).state_dict())`` works. It is a plain re-statement of
the official network (``docs/fidelity.md`` §A2-§A3) in straightforward PyTorch.
"""
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize

_REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def _replace_non_finite(x: Tensor) -> Tensor:
    return torch.nan_to_num(x, nan=1e-5, posinf=1e-5, neginf=1e-5)


class ConvPReLU(nn.Module):
    def __init__(self, in_ch, out_ch, kernel_size=3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class DownSample(nn.Module):
    def __init__(self, num_feat):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.channel_reduce = nn.Conv2d(4 * num_feat, num_feat, 1, bias=False)

    def forward(self, x):
        return self.channel_reduce(F.pixel_unshuffle(self.conv(x), 2))


class UpSample(nn.Module):
    def __init__(self, num_feat):
        super().__init__()
        self.channel_expand = nn.Conv2d(num_feat, 4 * num_feat, 1)
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(F.pixel_shuffle(self.channel_expand(x), 2))


class ResBlock(nn.Module):
    def __init__(self, num_feat):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + x)


class ResidualGroup(nn.Module):
    def __init__(self, num_feat, num_resblocks=2):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_resblocks)])
        self.out_conv = ConvPReLU(num_feat, num_feat)
        self.skip_scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.out_conv(self.resblocks(x)) + x * self.skip_scale


def _spectral_refine_net(num_feat):
    return nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(num_feat, num_feat, 3, padding=1))


class FFTBlock(nn.Module):
    def __init__(self, num_feat):
        super().__init__()
        self.in_conv = nn.Conv2d(num_feat, num_feat, 1)
        self.amplitude_refine = _spectral_refine_net(num_feat)
        self.phase_refine = _spectral_refine_net(num_feat)
        self.out_conv = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, x):
        restored = self.refine_in_fourier_domain(self.in_conv(x) + 1e-8)
        return _replace_non_finite(self.out_conv(restored) + x)

    @torch.compiler.disable
    def refine_in_fourier_domain(self, z):
        height, width = z.shape[-2:]
        with torch.autocast(device_type=z.device.type, enabled=False):
            if z.dtype in _REDUCED_PRECISION:
                z = z.float()
            spectrum = torch.fft.rfft2(z, norm='backward')
            amplitude = spectrum.abs()
            phase = spectrum.angle()
            amplitude = amplitude + self.amplitude_refine(amplitude)
            phase = phase + self.phase_refine(phase)
            real = amplitude * torch.cos(phase) + 1e-8
            imag = amplitude * torch.sin(phase) + 1e-8
            spectrum = torch.complex(real, imag) + 1e-8
            return torch.fft.irfft2(spectrum, s=(height, width), norm='backward').abs()


class ChannelCrossAttention(nn.Module):
    def __init__(self, num_feat, num_heads=8):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.query = nn.Conv2d(num_feat, num_feat, 1, bias=False)
        self.query_dwconv = nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=num_feat, bias=False)
        self.key_value = nn.Conv2d(num_feat, 2 * num_feat, 1, bias=False)
        self.key_value_dwconv = nn.Conv2d(2 * num_feat, 2 * num_feat, 3, padding=1, groups=2 * num_feat, bias=False)
        self.project_out = nn.Conv2d(num_feat, num_feat, 1, bias=False)

    def forward(self, query_source, key_value_source):
        batch, channels, height, width = query_source.shape
        query = self.query_dwconv(self.query(query_source))
        key, value = self.key_value_dwconv(self.key_value(key_value_source)).chunk(2, dim=1)
        query, key, value = (
            t.reshape(batch, self.num_heads, channels // self.num_heads, height * width) for t in (query, key, value))
        query = F.normalize(query, dim=-1)
        key = F.normalize(key, dim=-1)
        attention = (query @ key.transpose(-2, -1)) * self.temperature
        attention = attention.softmax(dim=-1)
        out = (attention @ value).reshape(batch, channels, height, width)
        return self.project_out(out)


class FrequencySpatialInteraction(nn.Module):
    def __init__(self, num_feat, num_heads=8, keep_unused_attention=True):
        super().__init__()
        self.spatial_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.frequency_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.cross_attention = ChannelCrossAttention(num_feat, num_heads)
        self.unused_attention = ChannelCrossAttention(num_feat, num_heads) if keep_unused_attention else None
        self.gate = nn.Sequential(nn.Conv2d(2 * num_feat, num_feat, 3, padding=1),
                                  nn.Conv2d(num_feat, 2 * num_feat, 3, padding=1), nn.Sigmoid())

    def forward(self, spatial, frequency):
        spatial = self.spatial_conv(spatial)
        frequency = self.frequency_conv(frequency)
        spatial = spatial + self.cross_attention(spatial, frequency)
        frequency = frequency + self.cross_attention(frequency, spatial)
        spatial_gate, frequency_gate = self.gate(torch.cat([spatial, frequency], dim=1)).chunk(2, dim=1)
        return _replace_non_finite(spatial * spatial_gate + frequency * frequency_gate)


class UNetBranch(nn.Module):
    def __init__(self, make_block, num_in_ch=3, num_out_ch=3, num_feat=64, num_levels=3):
        super().__init__()
        self.num_positions = 4 * num_levels + 2
        self.head = ConvPReLU(num_in_ch, num_feat)
        self.downsamplers = nn.ModuleList([DownSample(num_feat) for _ in range(num_levels)])
        self.encoder_blocks = nn.ModuleList([make_block() for _ in range(num_levels)])
        self.encoder_refine_blocks = nn.ModuleList([make_block() for _ in range(num_levels)])
        self.neck_block = make_block()
        self.neck_refine_block = make_block()
        self.upsamplers = nn.ModuleList([UpSample(num_feat) for _ in range(num_levels)])
        self.decoder_blocks = nn.ModuleList([make_block() for _ in range(num_levels)])
        self.decoder_refine_blocks = nn.ModuleList([make_block() for _ in range(num_levels)])
        self.tail = ConvPReLU(num_feat, num_out_ch)

    def forward(self, x, at_position):
        positions = iter(range(self.num_positions))
        feature = self.head(x)
        skips = [feature]
        for downsample, block, refine in zip(self.downsamplers, self.encoder_blocks, self.encoder_refine_blocks):
            feature = at_position(next(positions), block(downsample(feature)))
            feature = refine(feature)
            skips.append(feature)
            feature = at_position(next(positions), feature)
        feature = at_position(next(positions), self.neck_block(feature))
        feature = at_position(next(positions), self.neck_refine_block(feature) + skips.pop())
        for upsample, block, refine in zip(self.upsamplers, self.decoder_blocks, self.decoder_refine_blocks):
            feature = at_position(next(positions), block(upsample(feature)))
            feature = at_position(next(positions), refine(feature) + skips.pop())
        return self.tail(feature) + x


class ReferenceSFMNet(nn.Module):
    """The baseline SFMNet (same constructor arguments and state-dict layout as the plugin's SFMNet)."""

    def __init__(self, upscale=8, num_in_ch=3, num_out_ch=3, num_feat=64, num_resblocks=2, num_levels=3,
                 fusion_positions=None, keep_unused_attention=True, num_heads=8):
        super().__init__()
        self.upscale = upscale
        num_positions = 4 * num_levels + 2
        positions = range(num_positions) if fusion_positions is None else sorted(set(fusion_positions))
        self.frequency_branch = UNetBranch(partial(FFTBlock, num_feat), num_in_ch, num_out_ch, num_feat, num_levels)
        self.spatial_branch = UNetBranch(
            partial(ResidualGroup, num_feat, num_resblocks), num_in_ch, num_out_ch, num_feat, num_levels)
        self.interactions = nn.ModuleDict({
            str(position): FrequencySpatialInteraction(num_feat, num_heads, keep_unused_attention)
            for position in positions
        })

    def forward(self, x, return_frequency=False):
        height, width = x.shape[-2:]
        lr_up = x if self.upscale == 1 else pil_bicubic_resize(x, (height * self.upscale, width * self.upscale))
        frequency_features = []

        def record(position, feature):
            frequency_features.append(feature)
            return feature

        sr_frequency = self.frequency_branch(lr_up, record)

        def interact(position, spatial):
            key = str(position)
            if key not in self.interactions:
                return spatial
            return self.interactions[key](spatial, frequency_features[position])

        sr_spatial = self.spatial_branch(lr_up, interact)
        return (sr_spatial, sr_frequency) if return_frequency else sr_spatial
