"""The well-conditioned option (``phase_cut_width``) and the folded down-sampler.

The official FFT block feeds ``angle()`` of the feature spectrum to a conv net; a coefficient on the negative real
axis flips between +pi and -pi with the sign of a rounding error. ``phase_cut_width`` makes what the net sees
continuous there and must leave the parameters (so official weights) and, at 0, the function untouched.
"""
import json
import math
import os
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.archs.sfmnet_blocks import DownSample, FFTBlock, fold_phase_at_branch_cut
from sfmnet_plugin.archs.smlnet_arch import SMLNet
from sfmnet_plugin.utils.numerics import input_sensitivity, psnr

TINY = dict(num_feat=8, num_heads=2)


@pytest.mark.parametrize('width', [0.1, 0.5, 1.0])
def test_fold_leaves_phases_away_from_the_cut_and_closes_the_jump(width):
    phase = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)
    folded = fold_phase_at_branch_cut(phase, width)
    away = phase.abs() <= math.pi - width
    assert torch.equal(folded[away], phase[away])
    assert float(folded[0]) == float(folded[-1]) == 0.0  # -pi and +pi: one input, as on the circle
    # Lipschitz: no step larger than the ramp's slope times the grid step (the official map jumps by 2 pi).
    slope = max(1.0, (math.pi - width) / width)
    assert float((folded[1:] - folded[:-1]).abs().max()) <= slope * float(phase[1] - phase[0]) * (1 + 1e-9)


def test_width_zero_is_the_official_function_and_bad_widths_are_refused():
    phase = torch.linspace(-math.pi, math.pi, 101)
    assert fold_phase_at_branch_cut(phase, 0.0) is phase
    for bad in (-0.1, math.pi, 4.0):
        with pytest.raises(ValueError, match='phase_cut_width'):
            FFTBlock(4, phase_cut_width=bad)


def spectrum_to_signal(real, imag, size):
    return torch.fft.irfft2(torch.complex(real, imag), s=size)


def test_a_coefficient_crossing_the_negative_real_axis_no_longer_moves_the_block():
    # Two block inputs whose spectra differ only by the sign of one tiny imaginary part on the negative real axis.
    torch.manual_seed(0)
    size = (8, 8)
    real, imag = torch.randn(1, 2, 8, 5, dtype=torch.float64), torch.randn(1, 2, 8, 5, dtype=torch.float64)
    real[0, 0, 3, 2], imag[0, 0, 3, 2] = -1.0, 1e-12
    above = spectrum_to_signal(real, imag, size)
    imag[0, 0, 3, 2] = -1e-12
    below = spectrum_to_signal(real, imag, size)
    moves = {}
    for width in (0.0, 0.5):
        block = FFTBlock(2, phase_cut_width=width).double()
        torch.manual_seed(1)
        block.load_state_dict(FFTBlock(2).double().state_dict())
        with torch.no_grad():
            moves[width] = float((block.refine_in_fourier_domain(above) - block.refine_in_fourier_domain(below))
                                 .abs().max())
    assert moves[0.0] > 1e-3  # the official block: the 2 pi jump reaches the output
    assert moves[0.5] < 1e-9  # conditioned: the two inputs are the same function value


@pytest.mark.parametrize('network', [SFMNet, SMLNet])
def test_conditioned_network_loads_the_same_weights_and_width_zero_is_unchanged(network, real_faces):
    torch.manual_seed(0)
    official = network(**TINY).eval()
    conditioned = network(**TINY, phase_cut_width=0.5).eval()
    conditioned.load_state_dict(official.state_dict(), strict=True)
    explicit_zero = network(**TINY, phase_cut_width=0.0).eval()
    explicit_zero.load_state_dict(official.state_dict(), strict=True)
    lr = real_faces(16)
    with torch.no_grad():
        assert torch.equal(explicit_zero(lr), official(lr))
        assert not torch.equal(conditioned(lr), official(lr))


def test_conditioned_sfmnet_is_steadier_on_real_faces_and_close_to_the_official_output(real_faces):
    torch.manual_seed(0)
    official = SFMNet(**TINY).eval()
    conditioned = SFMNet(**TINY, phase_cut_width=1.0).eval()
    conditioned.load_state_dict(official.state_dict())
    lr = real_faces(16)
    official_moves = input_sensitivity(official, lr, trials=3)
    conditioned_moves = input_sensitivity(conditioned, lr, trials=3)
    assert official_moves > 1e-4  # the official network amplifies a 1e-7 input change (measured: ~1e-3)
    assert conditioned_moves < official_moves / 10
    with torch.no_grad():
        assert psnr(conditioned(lr), official(lr)) > 30  # a different function, but a close one


def test_folded_down_sampler_is_the_three_step_chain_with_the_same_gradients():
    torch.manual_seed(0)
    block = DownSample(5).double()
    x = torch.randn(2, 5, 8, 6, dtype=torch.float64, requires_grad=True)
    folded = block(x)
    chain = block.channel_reduce(F.pixel_unshuffle(block.conv(x), 2))
    torch.testing.assert_close(folded, chain, rtol=0, atol=1e-13)
    weight = torch.randn_like(chain)
    grads_folded = torch.autograd.grad((folded * weight).sum(), [x, block.conv.weight, block.channel_reduce.weight])
    grads_chain = torch.autograd.grad((chain * weight).sum(), [x, block.conv.weight, block.channel_reduce.weight])
    for a, b in zip(grads_folded, grads_chain):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_conditioning_benchmark_prints_one_row_per_width(tmp_path, capsys, real_faces, repo_root):
    sys.path.insert(0, os.path.join(repo_root, 'benchmarks'))
    from bench_conditioning import main

    torch.manual_seed(0)
    options = {'type': 'SFMNet', **TINY}
    torch.save({'params': SFMNet(**TINY).state_dict()}, tmp_path / 'tiny.pth')
    for folder, size in (('lr', 16), ('gt', 128)):
        (tmp_path / folder).mkdir()
        for index, face in enumerate(real_faces(size)):
            array = (face.permute(1, 2, 0).numpy() * 255).round().astype('uint8')
            Image.fromarray(array).save(tmp_path / folder / f'face{index}.png')
    main(['--checkpoint', str(tmp_path / 'tiny.pth'), '--arch-json', json.dumps(options), '--lr', str(tmp_path / 'lr'),
          '--gt', str(tmp_path / 'gt'), '--widths', '0', '1.0', '--trials', '1'])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith('|')][2:]  # after the header
    assert [row.split('|')[1].strip() for row in rows] == ['0 (official)', '1']
    official = rows[0].split('|')
    assert official[3].strip() == '0.0e+00' and official[4].strip() == 'inf'  # the official row is the reference
    assert official[6].strip() == '+0.0000 / +0.0000'
