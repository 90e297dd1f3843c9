"""SMLNet (unofficial, from the abstract): parameter counts, shapes, ablations, numerics, gradchecks, registry.

Forward passes use a tiny width (num_feat=8, num_heads=2) and small images; the default width only runs on 16x16 HR
images. Training through the launchers (dual loss, DDP) is in models/test_sfmnet_models.py, parametrized with SFMNet's.
"""
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_plugin.archs.pil_resize import resize_as_8bit
from sfmnet_plugin.archs.smlnet_arch import SMLNet
from sfmnet_plugin.archs.smlnet_blocks import MFEB, SFIM, ConcatFusion, MultiLevelAggregation

TINY = dict(num_feat=8, num_heads=2)
ABLATIONS = {
    'default': {},
    'single_scale_mfeb': dict(mfeb_dilations=[1, 1, 1]),
    'concat_interaction': dict(interaction='concat'),
    'no_interaction': dict(interaction='none'),
    'no_multi_level_aggregation': dict(multi_level_aggregation=False),
}


def test_default_parameter_counts(count_parameters):
    torch.manual_seed(0)
    model = SMLNet()
    assert model.count_parameters_by_group() == {
        'frequency_branch': 2_397_573,  # SFMNet's frequency branch, unchanged
        'spatial_branch': 2_238_085,  # 14 MFEBs of 144,640 + head, tail, 3 down- and 3 up-samplers
        'interactions': 1_773_422,  # 14 SFIMs of 126,673
        'aggregation': 16_448,
        'total': 6_425_528,
    }
    assert count_parameters(model) <= 9_000_000  # inside SFMNet's range (8.5-8.8 M)


@pytest.mark.parametrize('ablation, expected_total', [
    ('default', 6_425_528),
    ('single_scale_mfeb', 6_425_528),  # same parameters, one receptive field
    ('concat_interaction', 6_425_528 - 14 * (126_673 - 73_792)),
    ('no_interaction', 6_425_528 - 14 * 126_673),
    ('no_multi_level_aggregation', 6_425_528 - 16_448),
])
def test_ablation_parameter_counts(ablation, expected_total, count_parameters):
    assert count_parameters(SMLNet(**ABLATIONS[ablation])) == expected_total


@pytest.mark.parametrize('make_block, expected', [
    (lambda: MFEB(64), 3 * (9 * 64 * 32 + 32) + 3 * (9 * 96 * 32 + 32) + 96 * 64 + 64),  # 144,640
    (lambda: MFEB(64, (1,)), 9 * 64 * 32 + 32 + 9 * 32 * 32 + 32 + 32 * 64 + 64),
    (lambda: SFIM(64, 8), 2 * (64 * 64 + 64) + 2 * 18_120 + (9 * 128 * 64 + 64) + 1 + (64 * 128 + 128)),  # 126,673
    (lambda: ConcatFusion(64), 9 * 128 * 64 + 64),  # 73,792
    (lambda: MultiLevelAggregation(64, 4), 4 * 64 * 64 + 64),  # 16,448
])
def test_block_parameter_counts(make_block, expected, count_parameters):
    assert count_parameters(make_block()) == expected


@pytest.mark.parametrize('upscale, lr_shape, hr_shape', [
    (4, (32, 32), (128, 128)), (8, (16, 16), (128, 128)), (16, (8, 8), (128, 128)), (1, (64, 64), (64, 64)),
    (8, (20, 16), (160, 128)),  # a non-square face
])
@pytest.mark.parametrize('ablation', ['default', 'no_multi_level_aggregation'])
def test_output_shapes(upscale, lr_shape, hr_shape, ablation):
    torch.manual_seed(0)
    model = SMLNet(upscale=upscale, **TINY, **ABLATIONS[ablation])
    with torch.no_grad():
        sr_spatial, sr_frequency = model(torch.rand(2, 3, *lr_shape), return_frequency=True)
        sr_only = model(torch.rand(1, 3, *lr_shape))
    assert sr_spatial.shape == sr_frequency.shape == (2, 3, *hr_shape)
    assert sr_only.shape == (1, 3, *hr_shape)


def test_block_shapes_along_the_u_net():
    """Every MFEB, SFIM and the aggregation keep B x C x h x w; the aggregation sees the neck and decoder levels."""
    torch.manual_seed(0)
    model = SMLNet(upscale=8, **TINY)
    seen = {}

    def remember(name):
        return lambda module, args, out: seen.setdefault(name, []).append((args, out))

    for module in model.modules():
        if isinstance(module, (MFEB, SFIM, MultiLevelAggregation)):
            module.register_forward_hook(remember(type(module).__name__))
    with torch.no_grad():
        model(torch.rand(1, 3, 4, 6))  # 32 x 48 HR
    sizes = [(32, 48), (16, 24), (8, 12), (4, 6)]  # the U-Net's levels, fine to coarse
    positions = [sizes[1]] * 2 + [sizes[2]] * 2 + [sizes[3]] * 2 + [sizes[3]] * 2 + [sizes[2]] * 2 + \
        [sizes[1]] * 2 + [sizes[0]] * 2
    assert [out.shape[-2:] for _, out in seen['MFEB']] == positions
    assert [out.shape[-2:] for _, out in seen['SFIM']] == positions
    assert all(out.shape[:2] == (1, 8) for _, out in seen['MFEB'] + seen['SFIM'])
    (features,), aggregated = seen['MultiLevelAggregation'][0]
    assert [f.shape[-2:] for f in features] == [sizes[3], sizes[2], sizes[1], sizes[0]]
    assert aggregated.shape == (1, 8, 32, 48)


def test_outputs_are_residuals_on_the_pil_bicubic_input():
    model = SMLNet(**TINY)
    for tail in (model.frequency_branch.tail, model.spatial_branch.tail):
        torch.nn.init.zeros_(tail.conv.weight)  # residual 0 -> both outputs are the upsampled input
    lr = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        sr_spatial, sr_frequency = model(lr, return_frequency=True)
    expected = resize_as_8bit(lr, (32, 32))
    torch.testing.assert_close(sr_spatial, expected)
    torch.testing.assert_close(sr_frequency, expected)


@pytest.mark.parametrize('upscale, lr_shape', [(1, (100, 100)), (2, (10, 12)), (4, (15, 16))])
def test_size_not_divisible_raises_a_clear_error(upscale, lr_shape):
    model = SMLNet(upscale=upscale, **TINY)
    with pytest.raises(ValueError, match=rf'SMLNet got a {lr_shape[0]}x{lr_shape[1]} input.*divisible by 8'):
        model(torch.rand(1, 3, *lr_shape))


@pytest.mark.parametrize('kwargs', [
    dict(upscale=3), dict(num_in_ch=1, num_out_ch=3), dict(num_levels=0), dict(num_feat=8, num_heads=3),
    dict(num_feat=5, num_heads=1), dict(interaction='attention'), dict(mfeb_dilations=[]),
    dict(mfeb_dilations=[1, 0]),
])
def test_invalid_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        SMLNet(**{**TINY, **kwargs})


@pytest.mark.parametrize('ablation', sorted(ABLATIONS))
def test_every_parameter_gets_a_finite_gradient_from_the_dual_loss(ablation, dual_loss_backward):
    """So DDP needs no find_unused_parameters, for the default and every ablation."""
    torch.manual_seed(0)
    model = SMLNet(**TINY, **ABLATIONS[ablation])
    dual_loss_backward(model, torch.rand(2, 3, 4, 4))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_without_interaction_the_spatial_result_ignores_the_frequency_branch():
    model = SMLNet(interaction='none', **TINY)
    model(torch.rand(1, 3, 4, 4)).mean().backward()
    assert all(p.grad is None for p in model.frequency_branch.parameters())
    assert all(p.grad is not None for p in model.spatial_branch.parameters())


def near_constant(shape):
    return 0.5 + 1e-6 * torch.rand(shape)


INPUTS = {'black': torch.zeros, 'white': torch.ones, 'random': torch.rand, 'near_constant': near_constant}


@pytest.mark.parametrize('fill', sorted(INPUTS))
@pytest.mark.parametrize('config', ['tiny', 'default_width'])
def test_outputs_and_gradients_are_finite(fill, config, dual_loss_backward):
    """Flat inputs make spectra that are zero except at DC: the phase of a ~0 coefficient must not poison gradients."""
    torch.manual_seed(0)
    # the default 8-bit input step: its value is the 8-bit image, its gradient the float resize's (straight-through)
    model, lr_shape = (SMLNet(**TINY), (2, 3, 4, 4)) if config == 'tiny' else (SMLNet(upscale=2), (1, 3, 8, 8))
    lr = INPUTS[fill](lr_shape).requires_grad_(True)
    outputs = dual_loss_backward(model, lr)
    assert all(torch.isfinite(out).all() for out in outputs)
    assert torch.isfinite(lr.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_batch_and_mode_do_not_change_the_output():
    # float64: in float32 another batch size orders the sums differently, and a phase flip of the FFT blocks
    # (see FFTBlock's conditioning note) can then move the output by ~1e-2.
    torch.manual_seed(0)
    model = SMLNet(**TINY).double()
    lr = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        model.eval()
        batched_eval = model(lr)
        model.train()
        batched_train = model(lr)
        single = torch.cat([model(lr[:1]), model(lr[1:])])
    torch.testing.assert_close(batched_eval, batched_train, rtol=0, atol=0)
    torch.testing.assert_close(batched_eval, single, rtol=1e-9, atol=1e-9)


def receptive_radius(block, size=21):
    """Largest Chebyshev distance from the centre at which an input pixel changes the centre output."""
    x = torch.randn(1, 8, size, size, requires_grad=True)
    block(x)[0, :, size // 2, size // 2].sum().backward()
    rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)), as_tuple=True)
    return int(torch.maximum((rows - size // 2).abs(), (cols - size // 2).abs()).max())


def test_mfeb_multi_scale_paths_widen_the_receptive_field_at_equal_parameters(count_parameters):
    torch.manual_seed(0)
    multi_scale, single_scale = MFEB(8, (1, 2, 3)), MFEB(8, (1, 1, 1))
    assert count_parameters(multi_scale) == count_parameters(single_scale)
    assert receptive_radius(single_scale) == 2  # two 3x3 convs
    assert receptive_radius(multi_scale) == 6  # two 3x3 convs with dilation up to 3


def test_sfim_uses_one_attention_per_direction_and_adds_to_the_spatial_feature():
    torch.manual_seed(0)
    block = SFIM(8, num_heads=2)
    spatial, frequency = torch.randn(1, 8, 4, 5), torch.randn(1, 8, 4, 5)
    with torch.no_grad():
        fused = block(spatial, frequency)
        s, f = block.spatial_proj(spatial), block.frequency_proj(frequency)
        s_new = s + block.spatial_from_frequency(s, f)  # spatial queries, frequency keys/values
        f_new = f + block.frequency_from_spatial(f, s)  # frequency queries, spatial keys/values
        gates = block.gate(torch.cat([s_new, f_new], 1))
    assert block.spatial_from_frequency is not block.frequency_from_spatial
    torch.testing.assert_close(fused, spatial + s_new * gates[:, :8] + f_new * gates[:, 8:])


def test_multi_level_aggregation_resizes_coarse_levels_and_adds_to_the_finest():
    torch.manual_seed(0)
    block = MultiLevelAggregation(4, 3)
    torch.nn.init.zeros_(block.fuse.bias)
    features = [torch.randn(1, 4, 2, 3), torch.randn(1, 4, 4, 6), torch.randn(1, 4, 8, 12)]
    with torch.no_grad():
        out = block(features)
        # the 1x1 conv is linear: its effect equals the sum over the per-level slices of its weight
        expected = features[-1].clone()
        for index, feature in enumerate(features):
            resized = torch.nn.functional.interpolate(feature, size=(8, 12), mode='bilinear', align_corners=False)
            weight = block.fuse.weight[:, 4 * index:4 * (index + 1)]
            expected += torch.nn.functional.conv2d(resized, weight)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match='expects 3 features, got 2'):
        block(features[1:])


def test_gradcheck_mfeb(gradcheck_inputs_and_parameters):
    torch.manual_seed(0)
    block = MFEB(4, (1, 2)).double()
    x = torch.randn(1, 4, 5, 6, dtype=torch.double, requires_grad=True)
    assert gradcheck_inputs_and_parameters(block, x)


def test_gradcheck_sfim(gradcheck_inputs_and_parameters):
    torch.manual_seed(0)
    block = SFIM(4, num_heads=2).double()
    spatial = torch.randn(1, 4, 3, 5, dtype=torch.double, requires_grad=True)
    frequency = torch.randn(1, 4, 3, 5, dtype=torch.double, requires_grad=True)
    assert gradcheck_inputs_and_parameters(block, spatial, frequency)


def test_gradcheck_concat_fusion(gradcheck_inputs_and_parameters):
    torch.manual_seed(0)
    block = ConcatFusion(3).double()
    spatial = torch.randn(1, 3, 4, 4, dtype=torch.double, requires_grad=True)
    frequency = torch.randn(1, 3, 4, 4, dtype=torch.double, requires_grad=True)
    assert gradcheck_inputs_and_parameters(block, spatial, frequency)


def test_gradcheck_multi_level_aggregation():
    torch.manual_seed(0)
    block = MultiLevelAggregation(2, 3).double()
    features = [torch.randn(1, 2, *size, dtype=torch.double, requires_grad=True) for size in ((2, 2), (3, 4), (6, 8))]
    names = [name for name, _ in block.named_parameters()]

    def as_positional(*features):  # gradcheck passes tensors positionally; the block takes a list
        return block(list(features))

    assert torch.autograd.gradcheck(as_positional, tuple(features), eps=1e-6, atol=1e-5, rtol=1e-3)
    params = tuple(p.detach().clone().requires_grad_(True) for p in block.parameters())

    def with_parameters(*args):
        return torch.func.functional_call(block, dict(zip(names, args[3:])), (list(args[:3]),))

    assert torch.autograd.gradcheck(with_parameters, tuple(features) + params, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_fourier_parts_run_in_float32_under_autocast(monkeypatch):
    torch.manual_seed(0)
    model = SMLNet(**TINY)
    transformed_dtypes = []
    rfft2 = torch.fft.rfft2

    def recording_rfft2(x, *args, **kwargs):
        transformed_dtypes.append(x.dtype)
        return rfft2(x, *args, **kwargs)

    lr = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        reference = model(lr)
        monkeypatch.setattr(torch.fft, 'rfft2', recording_rfft2)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            reduced = model(lr, return_frequency=True)
    assert torch.isfinite(reduced[0]).all() and torch.isfinite(reduced[1]).all()
    assert (reduced[0].float() - reference).abs().mean() < 0.05
    assert len(transformed_dtypes) == 14 and set(transformed_dtypes) == {torch.float32}


def test_registered_in_basicsr():
    network = build_network({'type': 'SMLNet', 'upscale': 4, **TINY, 'interaction': 'concat'})
    assert isinstance(network, SMLNet) and len(network.interactions) == 14
    assert isinstance(network.interactions['0'], ConcatFusion)


def test_residual_branches_start_near_the_identity():
    """BasicSR's 0.1-scaled init: each block changes its input by a small fraction at initialisation."""
    torch.manual_seed(0)
    x, other = torch.randn(2, 16, 12, 12), torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        changes = {
            'MFEB': MFEB(16)(x) - x,
            'SFIM': SFIM(16, 2)(x, other) - x,
            'ConcatFusion': ConcatFusion(16)(x, other) - x,
            'MultiLevelAggregation': MultiLevelAggregation(16, 2)([torch.randn(2, 16, 6, 6), x]) - x,
        }
    # With PyTorch's default initialisation these fractions are about 0.12, 0.41, 0.55 and 0.49.
    limits = {'MFEB': 0.02, 'SFIM': 0.2, 'ConcatFusion': 0.2, 'MultiLevelAggregation': 0.2}
    for name, change in changes.items():
        assert change.abs().mean() < limits[name] * x.abs().mean(), name
