"""SMLNet: an UNOFFICIAL dual-domain multi-scale face SR network, designed from the abstract of Xie et al.,
"Learning to Super-Resolve Face Images via Dual-Domain Multi-scale Feature Interaction", IEEE TIP 2026.

**Read this first.** Only the paper's abstract is public: no code, no figures, no tables. This network is this
project's design from the abstract's sentences, built from published blocks; it is *not* the authors' network,
its parameter count and results are not the paper's, and no reference numbers exist to check it against. If the
authors release their code, that code supersedes this module. ``docs/smlnet.md`` gives the full rationale.

What each part answers in the abstract:

* "a dual-branch architecture. [...] the frequency branch captures high-quality global structures and fine
  high-frequency details" -> the frequency branch is SFMNet's U-Net of :class:`FFTBlock` (every output pixel of
  a Fourier block sees the whole image), with its own output ``sr_frequency`` and its own losses;
* "the spatial branch operates complementarily to preserve fine-grained local texture patterns" and
  "failing to capture essential multi-scale textures due to the rigid receptive fields" -> the spatial branch is
  the same U-Net shape built from :class:`MFEB` (parallel dilated 3x3 paths, MSRN-style cross-scale exchange);
* "a Multi-scale Spatial-frequency feature Interaction Module (MSIM), which combines a [MFEB] and a [SFIM]" ->
  at each of the U-Net's ``4 L + 2`` positions, MSIM = the spatial branch's MFEB followed by an :class:`SFIM`
  that fuses in the frequency feature of the same position (two-way channel cross-attention, gated fusion);
* "to interact and aggregate multi-level complementary features from the dual branches" -> the MSIM outputs of
  the neck and of every decoder level (``L + 1`` levels, coarse to fine) are aggregated at full resolution by
  :class:`MultiLevelAggregation` before the spatial tail.

Assumed, where the abstract is silent: SFMNet's topology (the frequency branch runs first and receives nothing
back; the spatial skips carry the MFEB output before its SFIM, as SFMNet's do), SFMNet's input contract and
losses, BasicSR's 0.1-scaled initialisation of residual branches (so the 14 residual additions start near the
identity), and the sizes below (6.43 M parameters at the defaults, inside SFMNet's 8.5-8.8 M).

Data flow (x8, 16x16 LR face, ``C = 64``, ``L = 3``)::

    lr (B x 3 x 16 x 16) --PIL bicubic--> lr_up (B x 3 x 128 x 128)
    frequency branch: U-Net of FFTBlocks, 128 -> 64 -> 32 -> 16 -> 32 -> 64 -> 128, all C channels
        -> features f_p at the 14 positions p, and sr_frequency = tail + lr_up       (B x 3 x 128 x 128)
    spatial branch: the same U-Net shape of MFEBs; at position p the MFEB output s_p becomes
        MSIM_p = SFIM_p(s_p, f_p)                                                     (B x C x h_p x w_p)
        the MSIM outputs after the neck (16x16) and each decoder level (32, 64, 128) -> MultiLevelAggregation
        -> sr_spatial = tail + lr_up   (the SR result)                                (B x 3 x 128 x 128)

Ablation switches (each keeps everything else identical): ``mfeb_dilations=[1, 1, 1]`` (single-scale MFEB, same
parameters), ``interaction='concat'`` (plain concatenation instead of SFIM) or ``'none'`` (two independent
branches), ``multi_level_aggregation=False``.
"""
from collections.abc import Callable
from functools import partial

from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.sfmnet_arch import TwoBranchUNet, UNetBranch
from sfmnet_plugin.archs.sfmnet_blocks import FFTBlock
from sfmnet_plugin.archs.smlnet_blocks import MFEB, SFIM, ConcatFusion, MultiLevelAggregation
from sfmnet_plugin.utils.profiling import count_parameters

INTERACTIONS = ('sfim', 'concat', 'none')


@ARCH_REGISTRY.register()
class SMLNet(TwoBranchUNet):
    """SMLNet generator (unofficial, from the abstract): LR face in, spatial SR out (frequency-branch SR on request).

    The same contract as :class:`~sfmnet_plugin.archs.sfmnet_arch.SFMNet`, so ``SFMNetModel``'s dual pixel loss
    and the ``FrequencyLoss`` train it unchanged.

    Args:
        upscale: 1, 2, 4, 8 or 16. The LR input ``B x 3 x h x w`` in [0, 1] is first resized to
            ``(h * upscale, w * upscale)`` with PIL's bicubic (see ``lr_resize``); 1 means it already is that image.
        num_in_ch, num_out_ch: image channels; must be equal (both outputs are ``residual + input``).
        num_feat: width ``C`` of every stage (64); even (MFEB paths have ``C / 2`` channels).
        num_levels: depth ``L`` of both U-Nets (3); the HR size must be divisible by ``2 ** L``.
        num_heads: heads of SFIM's channel cross-attention (8; ``num_feat / num_heads`` channels each).
        mfeb_dilations: dilations of the MFEB's parallel paths ((1, 2, 3)); ``[1, 1, 1]`` is the single-scale
            ablation with the same parameter count.
        interaction: ``'sfim'`` (default), ``'concat'`` (ablation: plain concatenation + 3x3 conv at every
            position) or ``'none'`` (ablation: no interaction; the branches only share the input).
        multi_level_aggregation: aggregate the neck and decoder levels' MSIM outputs before the tail (True).
        phase_cut_width: SFMNet's conditioning option for the FFT blocks (0: SFMNet's official function; see
            ``docs/conditioning.md``).
        lr_resize: ``'pil_uint8'`` (default): the LR upsampled bit for bit as PIL upsamples its 8-bit image;
            ``'pil_float'``: PIL's bicubic on the float values, differentiable in the LR (as SFMNet's option).

    ``forward(x, return_frequency=False)`` returns ``sr_spatial`` (``B x 3 x H x W``, not clamped), or
    ``(sr_spatial, sr_frequency)``.
    """

    NAME = 'SMLNet'

    def __init__(self, upscale: int = 8, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_levels: int = 3, num_heads: int = 8, mfeb_dilations=(1, 2, 3), interaction: str = 'sfim',
                 multi_level_aggregation: bool = True, phase_cut_width: float = 0.0,
                 lr_resize: str = 'pil_uint8'):
        super().__init__(upscale, num_in_ch, num_out_ch, num_levels, lr_resize)
        if interaction not in INTERACTIONS:
            raise ValueError(f'SMLNet interaction must be one of {INTERACTIONS}, got {interaction!r}.')
        num_positions = 4 * num_levels + 2
        # The neck's last position and each decoder level's last one, coarse to fine (the last is the output's).
        self.level_end_positions = tuple(range(2 * num_levels + 1, num_positions, 2))

        self.frequency_branch = UNetBranch(
            partial(FFTBlock, num_feat, phase_cut_width), num_in_ch, num_out_ch, num_feat, num_levels)
        self.spatial_branch = UNetBranch(
            partial(MFEB, num_feat, mfeb_dilations), num_in_ch, num_out_ch, num_feat, num_levels)
        make_interaction: Callable[[], nn.Module] | None = {
            'sfim': partial(SFIM, num_feat, num_heads), 'concat': partial(ConcatFusion, num_feat), 'none': None,
        }[interaction]
        # Keyed by position, like SFMNet's; empty for interaction='none'.
        self.interactions = nn.ModuleDict(
            {str(position): make_interaction() for position in range(num_positions)} if make_interaction else {})
        self.aggregation = (MultiLevelAggregation(num_feat, len(self.level_end_positions))
                            if multi_level_aggregation else None)

    def spatial_step(self, frequency_features: list) -> Callable[[int, Tensor], Tensor]:
        level_outputs = []

        def msim(position: int, spatial: Tensor) -> Tensor:
            # ``spatial`` is the output of the spatial branch's MFEB at this position: MSIM = SFIM after MFEB.
            key = str(position)
            if key in self.interactions:
                spatial = self.interactions[key](spatial, frequency_features[position])
            if self.aggregation is not None and position in self.level_end_positions:
                level_outputs.append(spatial)
                if position == self.level_end_positions[-1]:
                    return self.aggregation(level_outputs)
            return spatial

        return msim

    def count_parameters_by_group(self) -> dict:
        """Parameter counts: each branch, the interaction modules, the multi-level aggregation, and the total."""
        count = count_parameters
        return {
            'frequency_branch': count(self.frequency_branch),
            'spatial_branch': count(self.spatial_branch),
            'interactions': count(self.interactions),
            'aggregation': count(self.aggregation),
            'total': count(self),
        }


__all__ = ['SMLNet', 'INTERACTIONS']
