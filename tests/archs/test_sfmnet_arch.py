"""SFMNet generator: parameter counts of the official network (docs/fidelity.md §A3), shapes, sizes, gradients,
numerics, BasicSR integration.

Forward passes use a tiny width (num_feat=8, num_heads=2) and small images unless a test is about the default
width, which only runs on 16x16 HR images (plus one 128x128 forward) to keep the file fast on two CPU cores.
"""
import copy

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel

from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.archs.sfmnet_blocks import (
    ChannelCrossAttention,
    ConvPReLU,
    DownSample,
    FFTBlock,
    FrequencySpatialInteraction,
    ResBlock,
    ResidualGroup,
    UpSample,
)

TINY = dict(num_feat=8, num_heads=2)


@pytest.fixture(scope='module')
def full_model():
    torch.manual_seed(0)
    return SFMNet()


@pytest.fixture(scope='module')
def tiny_model():
    torch.manual_seed(0)
    return SFMNet(**TINY)


def test_default_parameter_counts_match_the_official_network(full_model):
    assert full_model.count_parameters_by_group() == {
        'frequency_branch': 2_397_573,
        'spatial_branch': 2_793_633,
        'interactions': 3_608_416,
        'unused_attention': 253_680,
        'total': 8_799_622,
    }
    assert len(full_model.state_dict()) == 584  # official TwoBranch: 584 tensors
    assert not list(full_model.buffers())  # no BatchNorm anywhere


def test_dropping_the_unused_attention_leaves_the_used_parameters(count_parameters):
    model = SFMNet(keep_unused_attention=False)
    assert count_parameters(model) == 8_545_942
    assert all(block.unused_attention is None for block in model.interactions.values())


@pytest.mark.parametrize('make_block, expected', [
    (lambda: FFTBlock(64), 156_032),
    (lambda: ResidualGroup(64, 2), 184_322),
    (lambda: ResBlock(64), 73_728),
    (lambda: DownSample(64), 53_248),
    (lambda: UpSample(64), 16_641),
    (lambda: ChannelCrossAttention(64, 8), 18_120),
    (lambda: FrequencySpatialInteraction(64, 8), 257_744),
    (lambda: FrequencySpatialInteraction(64, 8, keep_unused_attention=False), 257_744 - 18_120),
    (lambda: ConvPReLU(3, 64), 1_729),
    (lambda: ConvPReLU(64, 3), 1_729),
])
def test_block_parameter_counts_match_the_spec(make_block, expected, count_parameters):
    assert count_parameters(make_block()) == expected


def test_stage_parameter_counts_match_the_official_children(full_model, count_parameters):
    frequency, spatial = full_model.frequency_branch, full_model.spatial_branch
    # official down{k}_fre = DownSample + FreBlock9, up{k}_fre = UpSampler + FreBlock9, and the same with ResidualGroup
    assert count_parameters(frequency.downsamplers[0]) + count_parameters(frequency.encoder_blocks[0]) == 209_280
    assert count_parameters(frequency.upsamplers[0]) + count_parameters(frequency.decoder_blocks[0]) == 172_673
    assert count_parameters(spatial.downsamplers[0]) + count_parameters(spatial.encoder_blocks[0]) == 237_570
    assert count_parameters(spatial.upsamplers[0]) + count_parameters(spatial.decoder_blocks[0]) == 200_963
    assert len(full_model.interactions) == 14


@pytest.mark.parametrize('upscale, lr_size', [(8, 16), (4, 32), (16, 8), (1, 128)])
def test_output_shapes(upscale, lr_size):
    model = SFMNet(upscale=upscale, **TINY)
    with torch.no_grad():
        sr_spatial, sr_frequency = model(torch.rand(1, 3, lr_size, lr_size), return_frequency=True)
        sr_only = model(torch.rand(1, 3, lr_size, lr_size))
    assert sr_spatial.shape == sr_frequency.shape == sr_only.shape == (1, 3, 128, 128)


def test_full_model_forward_at_the_official_size(full_model):
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        sr_spatial, sr_frequency = full_model(lr, return_frequency=True)
    assert sr_spatial.shape == sr_frequency.shape == (1, 3, 128, 128)
    assert torch.isfinite(sr_spatial).all() and torch.isfinite(sr_frequency).all()


@pytest.mark.parametrize('lr_resize', ['pil_uint8', 'pil_float'])
def test_outputs_are_residuals_on_the_pil_bicubic_input(lr_resize):
    from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize, pil_uint8_resize

    model = SFMNet(**TINY, lr_resize=lr_resize)
    for tail in (model.frequency_branch.tail, model.spatial_branch.tail):
        torch.nn.init.zeros_(tail.conv.weight)  # residual 0 -> both outputs are the upsampled input
    lr = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        sr_spatial, sr_frequency = model(lr, return_frequency=True)
    if lr_resize == 'pil_uint8':  # the 8-bit image the LR stands for, upsampled as PIL does on uint8 images
        expected = pil_uint8_resize((lr * 255).round().to(torch.uint8), (32, 32)) / 255
    else:
        expected = pil_bicubic_resize(lr, (32, 32))
    torch.testing.assert_close(sr_spatial, expected)
    torch.testing.assert_close(sr_frequency, expected)


def test_non_square_size_that_is_not_128(tiny_model):
    with torch.no_grad():
        sr = tiny_model(torch.rand(1, 3, 24, 20))
    assert sr.shape == (1, 3, 192, 160)


@pytest.mark.parametrize('upscale, lr_shape', [(1, (100, 100)), (2, (10, 12)), (4, (15, 16))])
def test_size_not_divisible_raises_a_clear_error(upscale, lr_shape):
    model = SFMNet(upscale=upscale, **TINY)
    with pytest.raises(ValueError, match=rf'{lr_shape[0]}x{lr_shape[1]} input.*divisible by 8'):
        model(torch.rand(1, 3, *lr_shape))


@pytest.mark.parametrize('kwargs', [
    dict(upscale=3), dict(num_in_ch=1, num_out_ch=3), dict(fusion_positions=[14]), dict(num_levels=0),
    dict(num_feat=8, num_heads=3),
])
def test_invalid_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        SFMNet(**{**TINY, **kwargs})


def test_num_levels_and_fusion_positions():
    model = SFMNet(num_levels=2, fusion_positions=[0, 9], **TINY)
    assert sorted(model.interactions) == ['0', '9']
    sr = model(torch.rand(1, 3, 4, 4))  # 32x32 HR: divisible by 2**2
    assert sr.shape == (1, 3, 32, 32)


def test_positions_without_an_interaction_block_pass_the_spatial_feature_through():
    model = SFMNet(fusion_positions=[], **TINY)
    assert len(model.interactions) == 0
    sr_spatial, _ = model(torch.rand(1, 3, 4, 4), return_frequency=True)
    sr_spatial.mean().backward()
    # with no interaction, the spatial result cannot depend on the frequency branch
    assert all(p.grad is None for p in model.frequency_branch.parameters())
    assert all(p.grad is not None for p in model.spatial_branch.parameters())


def test_only_the_unused_attention_gets_no_gradient_at_default_width(dual_loss_backward):
    torch.manual_seed(0)
    model = SFMNet(upscale=2)
    dual_loss_backward(model, torch.rand(1, 3, 8, 8))  # 16x16 HR keeps the default width cheap
    without_grad = [(name, p.numel()) for name, p in model.named_parameters() if p.grad is None]
    assert len(without_grad) == 84
    assert sum(numel for _, numel in without_grad) == 253_680
    assert all('.unused_attention.' in name for name, _ in without_grad)


def test_every_parameter_gets_a_gradient_without_the_unused_attention(dual_loss_backward):
    torch.manual_seed(0)
    model = SFMNet(keep_unused_attention=False, **TINY)
    dual_loss_backward(model, torch.rand(1, 3, 4, 4))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize('fill', ['black', 'white', 'random'])
@pytest.mark.parametrize('config', ['tiny', 'default_width'])
def test_outputs_and_gradients_are_finite(fill, config, dual_loss_backward):
    torch.manual_seed(0)
    # the default 8-bit input step: its value is the 8-bit image, its gradient the float resize's (straight-through)
    model, lr_shape = (SFMNet(**TINY), (2, 3, 4, 4)) if config == 'tiny' else (SFMNet(upscale=2), (1, 3, 8, 8))
    lr = {'black': torch.zeros(lr_shape), 'white': torch.ones(lr_shape), 'random': torch.rand(lr_shape)}[fill]
    lr.requires_grad_(True)
    outputs = dual_loss_backward(model, lr)
    assert all(torch.isfinite(out).all() for out in outputs)
    assert torch.isfinite(lr.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_batch_and_mode_do_not_change_the_output(tiny_model):
    # float64: in float32 another batch size orders the sums differently, and a phase flip of the FFT blocks
    # (see FFTBlock's conditioning note) can then move the output by ~1e-2.
    model = copy.deepcopy(tiny_model).double()
    lr = torch.rand(2, 3, 4, 4, dtype=torch.float64)  # x8 -> 32x32
    with torch.no_grad():
        model.eval()
        batched_eval = model(lr)
        model.train()
        batched_train = model(lr)
        single = torch.cat([model(lr[:1]), model(lr[1:])])
    torch.testing.assert_close(batched_eval, batched_train, rtol=0, atol=0)
    torch.testing.assert_close(batched_eval, single, rtol=1e-9, atol=1e-9)


def test_gradcheck_fft_block(gradcheck_inputs_and_parameters):
    # Random inputs keep |rfft2| and |irfft2| away from the non-differentiable 0 (checked over many seeds).
    torch.manual_seed(0)
    block = FFTBlock(2).double()
    x = torch.rand(1, 2, 4, 6, dtype=torch.double, requires_grad=True)
    assert gradcheck_inputs_and_parameters(block, x)


def test_gradcheck_interaction_block(gradcheck_inputs_and_parameters):
    torch.manual_seed(0)
    block = FrequencySpatialInteraction(4, num_heads=2, keep_unused_attention=False).double()
    spatial = torch.randn(1, 4, 3, 5, dtype=torch.double, requires_grad=True)
    frequency = torch.randn(1, 4, 3, 5, dtype=torch.double, requires_grad=True)
    assert gradcheck_inputs_and_parameters(block, spatial, frequency)


def test_interaction_block_uses_one_attention_both_ways_and_feeds_gates_in_spatial_frequency_order():
    torch.manual_seed(0)
    block = FrequencySpatialInteraction(8, num_heads=2)
    spatial, frequency = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    calls = []
    block.cross_attention.register_forward_hook(lambda module, args, out: calls.append(args))
    block.unused_attention.register_forward_hook(lambda module, args, out: pytest.fail('unused attention ran'))
    fused = block(spatial, frequency)
    s = block.spatial_conv(spatial)
    f = block.frequency_conv(frequency)
    torch.testing.assert_close(calls[0][0], s)  # first call: queries from the spatial feature
    torch.testing.assert_close(calls[0][1], f)
    s = s + block.cross_attention(s, f)
    torch.testing.assert_close(calls[1][1], s)  # second call: keys/values from the updated spatial feature
    f = f + block.cross_attention(f, s)
    gates = block.gate(torch.cat([s, f], 1))
    torch.testing.assert_close(fused, s * gates[:, :8] + f * gates[:, 8:])


def test_fft_block_runs_its_fourier_part_in_float32_under_autocast():
    torch.manual_seed(0)
    model = SFMNet(**TINY)
    lr = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        reference = model(lr)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            reduced = model(lr)
    assert torch.isfinite(reduced).all()
    assert (reduced.float() - reference).abs().mean() < 0.05


def test_registered_and_trainable_with_basicsr_srmodel(tmp_path):
    network_opt = dict(type='SFMNet', upscale=8, **TINY)
    assert isinstance(build_network(dict(network_opt)), SFMNet)
    opt = {
        'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0, 'world_size': 1,
        'network_g': network_opt,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'models': str(tmp_path)},
        'train': {
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
        },
    }
    model = SRModel(opt)
    model.feed_data({'lq': torch.rand(2, 3, 4, 4), 'gt': torch.rand(2, 3, 32, 32)})
    before = [p.detach().clone() for p in model.net_g.spatial_branch.parameters()]
    model.optimize_parameters(1)
    assert torch.isfinite(torch.tensor(model.log_dict['l_pix']))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.spatial_branch.parameters()))
    model.test()
    assert model.get_current_visuals()['result'].shape == (2, 3, 32, 32)
