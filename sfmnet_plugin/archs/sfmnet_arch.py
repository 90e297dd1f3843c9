"""SFMNet: spatial-frequency mutual learning for face super-resolution (Wang et al., CVPR 2023).

Re-implemented from the written specification of the official code (``docs/fidelity.md``,
§A1-§A3 and §A10). With the default arguments the network is the official ``TwoBranch``: 8,799,622
parameters, the same operations in the same order, and official checkpoints load after
:func:`sfmnet_plugin.checkpoints.sfmnet.convert_official_state_dict` renames their keys.

Data flow for the official configuration (x8, 16x16 LR face, ``C = 64``, ``num_levels = 3``)::

    lr (B x 3 x 16 x 16) --PIL bicubic--> lr_up (B x 3 x 128 x 128)
    frequency branch: U-Net of FFTBlocks, 128 -> 64 -> 32 -> 16 -> 32 -> 64 -> 128, all C channels
        -> features at 14 positions, and sr_frequency = tail + lr_up
    spatial branch:   the same U-Net shape with ResidualGroups; at each of the 14 positions a
        FrequencySpatialInteraction replaces the spatial feature by its fusion with the frequency
        feature of that position -> sr_spatial = tail + lr_up   (the SR result)

Positions, in order (``L = num_levels``): for each encoder level the output of its first block (after
the down-sampler) and of its refine block; the two neck blocks; for each decoder level the output of its
first block (after the up-sampler) and of its refine block, the latter after the skip addition.
That is ``4 L + 2`` positions (14 for L = 3), numbered like the official ``conv_fuse`` list.
"""
from collections.abc import Callable
from functools import partial

from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.pil_resize import check_lr_resize, upsample_lr_face
from sfmnet_plugin.archs.sfmnet_blocks import (
    ConvPReLU,
    DownSample,
    FFTBlock,
    FrequencySpatialInteraction,
    ResidualGroup,
    UpSample,
)
from sfmnet_plugin.utils.profiling import count_parameters

SUPPORTED_UPSCALES = (1, 2, 4, 8, 16)


class UNetBranch(nn.Module):
    """One SFMNet branch: a U-shaped encoder-decoder at constant width whose stages come from ``make_block``.

    ``forward(x, at_position) -> tail(features) + x``, ``B x in_ch x H x W -> B x out_ch x H x W``.

    * ``head``: conv+PReLU, ``in_ch -> C`` at ``H x W``;
    * encoder level ``i`` (resolution ``H / 2^(i+1)``): ``downsamplers[i]`` -> ``encoder_blocks[i]`` ->
      ``encoder_refine_blocks[i]``;
    * neck (``H / 2^L``): ``neck_block`` -> ``neck_refine_block`` + skip;
    * decoder level ``i`` (``H / 2^(L-1-i)``): ``upsamplers[i]`` -> ``decoder_blocks[i]`` ->
      ``decoder_refine_blocks[i]`` + skip;
    * ``tail``: conv+PReLU, ``C -> out_ch`` (the PReLU on the residual image is official).

    The skips are additions made after the refine block of the neck and of every decoder level; they add the
    head output and the encoder refine outputs, deepest first. ``at_position(index, feature)`` is called on
    the ``4 L + 2`` position features in order and returns the feature to continue with; a skip always uses
    the feature from *before* that call (official: the spatial skips bypass the fusion, §A10 item 9).
    """

    def __init__(self, make_block, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_levels: int = 3):
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

    def forward(self, x: Tensor, at_position) -> Tensor:
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


class TwoBranchUNet(nn.Module):
    """What SFMNet and SMLNet share: the checks of their common options, the PIL-bicubic input, and a forward that
    runs ``frequency_branch`` first, recording its position features, then ``spatial_branch`` with the subclass's
    :meth:`spatial_step` at every position. Subclasses set ``NAME`` (for messages) and build both branches.
    """

    NAME = ''

    def __init__(self, upscale: int, num_in_ch: int, num_out_ch: int, num_levels: int, lr_resize: str):
        super().__init__()
        self.lr_resize = check_lr_resize(lr_resize, self.NAME)
        if upscale not in SUPPORTED_UPSCALES:
            raise ValueError(f'{self.NAME} upscale must be one of {SUPPORTED_UPSCALES}, got {upscale!r}.')
        if num_in_ch != num_out_ch:
            raise ValueError(f'{self.NAME} adds its input to both outputs, so num_in_ch ({num_in_ch}) must equal '
                             f'num_out_ch ({num_out_ch}).')
        if num_levels < 1:
            raise ValueError(f'{self.NAME} num_levels must be at least 1, got {num_levels}.')
        self.upscale = upscale
        self.num_levels = num_levels

    def upsample_input(self, x: Tensor) -> Tensor:
        """``B x C x h x w`` LR -> ``B x C x (h*upscale) x (w*upscale)`` PIL-bicubic image, after a size check."""
        return upsample_lr_face(x, self.upscale, 2 ** self.num_levels, f'num_levels={self.num_levels}', self.NAME,
                                self.lr_resize)

    def spatial_step(self, frequency_features: list) -> Callable[[int, Tensor], Tensor]:
        """``at_position(index, spatial feature) -> feature`` of the spatial branch, for one forward."""
        raise NotImplementedError

    def forward(self, x: Tensor, return_frequency: bool = False):
        """``B x 3 x h x w`` LR -> ``sr_spatial`` (``B x 3 x H x W``), or ``(sr_spatial, sr_frequency)``."""
        lr_up = self.upsample_input(x)

        # The frequency branch runs first and on its own; its position features are only recorded.
        frequency_features = []

        def record(position: int, feature: Tensor) -> Tensor:
            frequency_features.append(feature)
            return feature

        sr_frequency = self.frequency_branch(lr_up, record)
        sr_spatial = self.spatial_branch(lr_up, self.spatial_step(frequency_features))
        return (sr_spatial, sr_frequency) if return_frequency else sr_spatial


@ARCH_REGISTRY.register()
class SFMNet(TwoBranchUNet):
    """SFMNet generator: LR face in, two SR estimates out (spatial = the result, frequency = auxiliary).

    Args:
        upscale: 1, 2, 4, 8 or 16. The LR input (``B x 3 x h x w`` in [0, 1]) is first resized to
            ``(h * upscale, w * upscale)`` with PIL's bicubic (see ``lr_resize``); 1 means the input is already
            that bicubic-upsampled image. The learned weights do not depend on it (the official x4/x8/x16 models
            share one architecture).
        num_in_ch, num_out_ch: image channels; must be equal because both outputs are ``residual + input``.
        num_feat: width ``C`` of every stage (64).
        num_resblocks: ResBlocks per ResidualGroup in the spatial branch (2).
        num_levels: depth ``L`` of both U-Nets (3); the HR size must be divisible by ``2 ** L``.
        fusion_positions: indices in ``[0, 4 L + 2)`` that get a :class:`FrequencySpatialInteraction`; the
            spatial feature passes through unchanged elsewhere. None (default, official) means all of them.
        keep_unused_attention: keep the official, never-called second attention module of every interaction
            block (True: official parameter count, strict loading of converted official checkpoints; False:
            253,680 fewer parameters at C = 64, and every parameter receives a gradient from the dual loss).
        num_heads: attention heads of the channel cross-attention (8; ``num_feat / num_heads`` channels each).
        phase_cut_width: 0 (default, official) or the width in radians (``< pi``) of the band around the
            negative real axis where every FFT block's phase refine net sees a phase ramped to 0, which makes
            the network continuous in its input (well-conditioned); parameters unchanged, so official weights
            load. See ``docs/conditioning.md`` for what it changes and how much steadier the output becomes.
        lr_resize: ``'pil_uint8'`` (default, official): the LR is taken as the 8-bit image it came from and
            upsampled as PIL upsamples uint8 images, bit for bit the official loader's input (no gradient into the
            LR); ``'pil_float'``: PIL's bicubic on the float values, without its rounding and clipping,
            differentiable in the LR (see :mod:`sfmnet_plugin.archs.pil_resize`).

    ``forward(x, return_frequency=False)`` returns the spatial-branch SR image ``B x 3 x H x W`` (not clamped),
    or ``(sr_spatial, sr_frequency)`` when ``return_frequency`` is true.
    """

    NAME = 'SFMNet'

    def __init__(self, upscale: int = 8, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_resblocks: int = 2, num_levels: int = 3, fusion_positions=None,
                 keep_unused_attention: bool = True, num_heads: int = 8, phase_cut_width: float = 0.0,
                 lr_resize: str = 'pil_uint8'):
        super().__init__(upscale, num_in_ch, num_out_ch, num_levels, lr_resize)
        num_positions = 4 * num_levels + 2
        if fusion_positions is None:
            fusion_positions = range(num_positions)
        fusion_positions = sorted(set(int(position) for position in fusion_positions))
        if any(not 0 <= position < num_positions for position in fusion_positions):
            raise ValueError(f'SFMNet fusion_positions must lie in [0, {num_positions}) for num_levels={num_levels}, '
                             f'got {fusion_positions}.')

        self.frequency_branch = UNetBranch(
            partial(FFTBlock, num_feat, phase_cut_width), num_in_ch, num_out_ch, num_feat, num_levels)
        self.spatial_branch = UNetBranch(
            partial(ResidualGroup, num_feat, num_resblocks), num_in_ch, num_out_ch, num_feat, num_levels)
        # Keyed by position so the state-dict names match the position numbers (and the official indices).
        self.interactions = nn.ModuleDict({
            str(position): FrequencySpatialInteraction(num_feat, num_heads, keep_unused_attention)
            for position in fusion_positions
        })

    def spatial_step(self, frequency_features: list) -> Callable[[int, Tensor], Tensor]:
        def interact(position: int, spatial: Tensor) -> Tensor:
            key = str(position)
            if key not in self.interactions:
                return spatial  # no interaction block at this position (fusion_positions)
            return self.interactions[key](spatial, frequency_features[position])
        return interact

    def count_parameters_by_group(self) -> dict:
        """Parameter counts: each branch, the interaction blocks, the never-used attention, and the total."""
        count = count_parameters
        unused = sum(count(block.unused_attention) for block in self.interactions.values()
                     if block.unused_attention is not None)
        return {
            'frequency_branch': count(self.frequency_branch),
            'spatial_branch': count(self.spatial_branch),
            'interactions': count(self.interactions),
            'unused_attention': unused,
            'total': count(self),
        }


__all__ = ['SFMNet', 'TwoBranchUNet', 'UNetBranch', 'SUPPORTED_UPSCALES']
