"""SPARNet, SPARNetHD and the multi-scale patch discriminator: parameter counts and layouts of the official networks
(docs/fidelity.md §B3, §B7), shapes, the [0, 1] contract, BatchNorm at inference, the official initialisation and
deterministic spectral norm.

Full-size networks are built on the meta device (no memory, no initialisation) for counts and shapes; forward
passes run on narrow configurations and small images, plus one default-width SPARNet forward at 16x16 -> 128x128.
"""
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_plugin.archs.patch_discriminator_arch import MultiScalePatchDiscriminator
from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize, pil_uint8_resize
from sfmnet_plugin.archs.sparnet_arch import SPARNet, SPARNetHD
from sfmnet_plugin.archs.sparnet_blocks import FaceAttentionUnit, HourGlassAttention

# A narrow SPARNet: 32 -> 8 -> 32 (2 down/up FAUs, 1 body FAU), 8-16 channels; hourglass depths 2, 1 | 1 | 2, 3.
TINY = dict(upscale=1, min_ch=8, max_ch=16, in_size=32, out_size=32, min_feat_size=8, res_depth=0, bottleneck_size=16)
# The same shape as SPARNetHD: InstanceNorm and spectral norm on every conv.
TINY_HD = dict(TINY, norm_type='in', spectral_norm=True)


def on_meta(make):
    with torch.device('meta'):
        return make()


@pytest.mark.parametrize('make, expected', [
    (lambda: SPARNet(), 10_518_867),                                   # released x8 SPARNet
    (lambda: SPARNet(res_depth=1, att_name='spar3d'), 5_242_211),      # SPARNet-Light-Attn3D
    (lambda: SPARNet(att_name='spar3d'), 11_562_083),
    (lambda: SPARNetHD(), 85_793_412),
    (lambda: SPARNetHD(att_name='spar3d'), 90_093_793),
    (lambda: MultiScalePatchDiscriminator(), 11_750_403),
])
def test_parameter_counts_match_the_official_networks(make, expected, count_parameters):
    assert count_parameters(on_meta(make)) == expected


def test_released_sparnet_stage_counts_and_batchnorm_layers_match_the_spec(count_parameters):
    model = on_meta(SPARNet)
    assert [count_parameters(getattr(model, name)) for name in ('encoder', 'res_layers', 'decoder', 'out_conv')] == [
        2_072_899, 6_289_290, 2_155_811, 867]
    assert [count_parameters(block) for block in model.encoder] == [896, 555_585, 739_905, 776_513]
    assert [count_parameters(block) for block in model.decoder] == [887_489, 666_369, 601_953]
    assert {count_parameters(block) for block in model.res_layers} == {628_929} and len(model.res_layers) == 10
    attention = sum(count_parameters(m) for m in model.modules() if isinstance(m, HourGlassAttention))
    assert attention == 6_072_720
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(batch_norms) == 187
    assert sum(b.numel() for b in model.buffers()) == 28_923


@pytest.mark.parametrize('depth, in_ch, expected', [(2, 128, 333_249), (3, 128, 444_225), (4, 64, 481_473),
                                                    (5, 32, 555_585)])
def test_hourglass_parameter_counts_follow_the_spec_formula(depth, in_ch, expected, count_parameters):
    block = on_meta(lambda: HourGlassAttention(depth, in_ch, 1))
    assert count_parameters(block) == expected == 2 * (9 * 64 * in_ch + 128) + (3 * depth - 1) * 36_992 + 577


def test_sparnethd_structure_matches_the_spec():
    model = on_meta(SPARNetHD)
    widths = [(block.conv1.conv2d.in_channels, block.conv2.conv2d.out_channels) for block in model.encoder[1:]]
    assert widths == [(102, 204), (204, 408), (408, 512), (512, 512)]
    assert [block.att_func.depth for block in model.encoder[1:]] == [4, 3, 2, 1]
    assert len(model.res_layers) == 9 and {block.att_func.depth for block in model.res_layers} == {1}
    assert [block.att_func.depth for block in model.decoder] == [2, 3, 4, 5]
    assert all(name.endswith(('weight_u', 'weight_v')) for name, _ in model.named_buffers())  # IN: no running stats
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(conv, 'weight_orig') for conv in convs)  # spectral norm on every conv


def test_full_size_output_shapes_on_the_meta_device():
    assert on_meta(lambda: SPARNet()(torch.empty(2, 3, 16, 16))).shape == (2, 3, 128, 128)
    assert on_meta(lambda: SPARNetHD()(torch.empty(1, 3, 512, 512))).shape == (1, 3, 512, 512)
    outputs = on_meta(lambda: MultiScalePatchDiscriminator()(torch.empty(1, 3, 512, 512)))
    assert [len(scale) for scale in outputs] == [6, 6, 6]  # 5 intermediate features, then the logits
    assert [tuple(scale[-1].shape) for scale in outputs] == [(1, 1, 30, 30), (1, 1, 14, 14), (1, 1, 6, 6)]
    assert [tuple(scale[0].shape) for scale in outputs] == [(1, 64, 512, 512), (1, 64, 256, 256), (1, 64, 128, 128)]


def test_default_sparnet_runs_x8_on_a_real_size_input_in_eval_mode():
    torch.manual_seed(0)
    model = SPARNet().eval()
    with torch.no_grad():
        sr = model(torch.rand(1, 3, 16, 16))
    assert sr.shape == (1, 3, 128, 128) and torch.isfinite(sr).all()


def test_attention_masks_of_every_fau_in_order():
    torch.manual_seed(0)
    model = SPARNet(**TINY).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        sr, masks = model.forward_with_attention(x)
        assert torch.equal(sr, model(x))
    # encoder FAUs at 16 and 8 (depths 2, 1), the body FAU at 8 (1), decoder FAUs at 16 and 32 (2, 3): one channel
    assert [tuple(mask.shape) for mask in masks] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 8, 8), (2, 1, 16, 16),
                                                     (2, 1, 32, 32)]
    assert all(((mask > 0) & (mask < 1)).all() for mask in masks)
    assert not any(module._forward_hooks for module in model.modules())  # hooks removed
    with torch.no_grad():
        _, masks_3d = SPARNet(**TINY, att_name='spar3d').eval().forward_with_attention(x)
    assert [mask.shape[1] for mask in masks_3d] == [16, 16, 16, 16, 8]  # one mask per channel of the FAU


def test_upscale_is_the_pil_bicubic_and_the_official_range_lives_inside():
    torch.manual_seed(0)
    lr = torch.randint(0, 256, (2, 3, 8, 8)) / 255  # an 8-bit LR, as the datasets give it
    inside = SPARNet(**dict(TINY, upscale=4)).eval()
    inside_float = SPARNet(**dict(TINY, upscale=4, lr_resize='pil_float')).eval()
    outside = SPARNet(**TINY).eval()
    outside.load_state_dict(inside.state_dict())
    inside_float.load_state_dict(inside.state_dict())
    with torch.no_grad():
        loaders_input = pil_uint8_resize((lr * 255).round().to(torch.uint8), (32, 32)) / 255
        assert torch.allclose(inside(lr), outside(loaders_input), atol=1e-6)
        assert torch.allclose(inside_float(lr), outside(pil_bicubic_resize(lr, (32, 32))), atol=1e-6)
        # the official network maps [-1, 1] -> [-1, 1]: a zero out_conv gives the official 0, i.e. grey 0.5 here
        torch.nn.init.zeros_(outside.out_conv.conv2d.weight)
        torch.nn.init.zeros_(outside.out_conv.conv2d.bias)
        assert torch.equal(outside(lr.repeat(1, 1, 4, 4)), torch.full((2, 3, 32, 32), 0.5))


def test_batchnorm_uses_running_statistics_at_inference():
    torch.manual_seed(0)
    model = SPARNet(**TINY)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # move the running statistics away from their initial values
            model(torch.rand(4, 3, 32, 32) * 0.5 + 0.3)
    images = torch.rand(8, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        batch = model(images)
        singles = torch.cat([model(image[None]) for image in images])
    assert torch.allclose(batch, singles, atol=1e-5)
    model.train()
    with torch.no_grad():  # batch statistics would make the image depend on its batch
        assert not torch.allclose(model(images)[:1], model(images[:1]), atol=1e-3)


def test_odd_intermediate_sizes_are_repaired_and_wrong_sizes_rejected():
    torch.manual_seed(0)
    model = SPARNet(**TINY).eval()
    with torch.no_grad():  # 36 -> 18 -> 9 -> 5 -> 10 != 9 inside the hourglasses: nearest resize back
        assert model(torch.rand(1, 3, 36, 44)).shape == (1, 3, 36, 44)
    with pytest.raises(ValueError, match='stride-2 stages the HR height and width must be divisible by 4'):
        model(torch.rand(1, 3, 30, 32))


def test_without_a_norm_the_input_is_not_overwritten_and_the_official_bug_is_an_option():
    torch.manual_seed(0)
    block = FaceAttentionUnit(8, 8, norm_type='none')  # official in-place LeakyReLU overwrote x here (§B9 item 2)
    buggy = FaceAttentionUnit(8, 8, norm_type='none', official_inplace_preactivation=True)
    buggy.load_state_dict(block.state_dict())
    x = torch.randn(1, 8, 8, 8)
    original = x.clone()
    with torch.no_grad():
        intended, official = block(x), buggy(x)
    assert torch.equal(x, original)
    # the official shortcut carried LeakyReLU(x) instead of x; the attended residual is the same
    torch.testing.assert_close(official - intended, torch.nn.functional.leaky_relu(x, 0.2) - x)


@torch.no_grad()
def test_official_initialisation_statistics():
    torch.manual_seed(0)
    model = SPARNet(official_init=True)
    conv_weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(conv_weights.mean()) < 1e-3 and conv_weights.std() == pytest.approx(0.02, rel=0.01)
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)
    bn_weights = torch.cat([m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert bn_weights.mean() == pytest.approx(1, abs=2e-3) and bn_weights.std() == pytest.approx(0.02, rel=0.05)
    default = SPARNet(**TINY)  # PyTorch's default init: BatchNorm weights exactly 1
    assert all(torch.equal(m.weight, torch.ones_like(m.weight))
               for m in default.modules() if isinstance(m, torch.nn.BatchNorm2d))
    hd = SPARNet(**TINY_HD, official_init=True)
    hd_weights = torch.cat([m.weight_orig.flatten() for m in hd.modules() if isinstance(m, torch.nn.Conv2d)])
    assert hd_weights.std() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize('make, image_size', [
    (lambda: SPARNet(**TINY_HD), 32),
    (lambda: MultiScalePatchDiscriminator(base_ch=8, max_ch=16, n_layers=2, num_D=2), 24),
])
def test_spectral_norm_weights_load_and_eval_outputs_are_deterministic(make, image_size):
    torch.manual_seed(0)
    trained = make()
    images = torch.rand(2, 3, image_size, image_size)
    with torch.no_grad():
        for _ in range(2):  # power iterations move u and v, as in training
            trained(images)
    trained.eval()
    state = trained.state_dict()
    assert any(key.endswith('weight_u') for key in state) and any(key.endswith('weight_orig') for key in state)
    torch.manual_seed(1)
    loaded = make()
    loaded.load_state_dict(state, strict=True)
    loaded.eval()

    def flat(outputs):
        return torch.cat([t.flatten() for t in torch.utils._pytree.tree_leaves(outputs)])

    with torch.no_grad():
        first, second, reference = flat(loaded(images)), flat(loaded(images)), flat(trained(images))
    assert torch.equal(first, second) and torch.equal(first, reference)
    assert all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items())  # eval: u, v unchanged


def test_discriminator_returns_features_then_logits_per_scale_and_checks_sizes():
    torch.manual_seed(0)
    model = MultiScalePatchDiscriminator(base_ch=8, max_ch=16, n_layers=2, num_D=2).eval()
    image = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        outputs = model(image)
        logits = model(image, return_features=False)
    assert [[tuple(t.shape) for t in scale] for scale in outputs] == [
        [(1, 8, 24, 24), (1, 16, 12, 12), (1, 16, 6, 6), (1, 1, 4, 4)],
        [(1, 8, 12, 12), (1, 16, 6, 6), (1, 16, 3, 3), (1, 1, 1, 1)],
    ]
    assert all(torch.equal(scale[-1], logit) for scale, logit in zip(outputs, logits))
    # the second scale sees the bicubic half-size image, mapped to [-1, 1]
    half = torch.nn.functional.interpolate(image * 2 - 1, scale_factor=0.5, mode='bicubic', align_corners=False)
    with torch.no_grad():
        assert torch.allclose(model.D_pool[1](half)[-1], logits[1])
    with pytest.raises(ValueError, match='at least 9x9'):
        model(torch.rand(1, 3, 16, 16))


def test_registered_in_basicsr():
    assert isinstance(build_network({'type': 'SPARNet', **TINY}), SPARNet)
    assert isinstance(build_network({'type': 'SPARNetHD', **TINY}), SPARNetHD)
    assert isinstance(build_network({'type': 'MultiScalePatchDiscriminator', 'num_D': 1}), MultiScalePatchDiscriminator)


@pytest.mark.parametrize('options, message', [
    (dict(upscale=0), 'upscale'),
    (dict(att_name='channel'), 'att_name'),
    (dict(norm_type='gn'), 'norm_type'),
    (dict(in_size=96), 'power of two'),
    (dict(bottleneck_size=32), 'bottleneck_size'),
])
def test_bad_options_are_rejected_with_the_option_name(options, message):
    with pytest.raises(ValueError, match=message):
        on_meta(lambda: SPARNet(**options))
