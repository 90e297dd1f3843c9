"""SISN: the official network parameter for parameter at x4 and x8 (``tests/data/sisn_official_keys.txt``), its output
on the golden faces (``tests/data/golden/sisn.npz``, made by the official code) and the quirks of the official code
(docs/fidelity.md §S9)."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.archs.sisn_arch import RGB_MEAN, SISN
from sfmnet_plugin.archs.sisn_blocks import SplitAttention, SplitAttentionBlock

KEYS = os.path.join('tests', 'data', 'sisn_official_keys.txt')
GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data', 'golden')
MEAN_SHIFT = ('sub_mean.weight', 'sub_mean.bias', 'add_mean.weight', 'add_mean.bias')  # fixed at construction
TINY = dict(num_groups=2, num_blocks=2, num_feat=16)


def golden_lr(scale):
    """The golden LR (16 x 16 at x8, 32 x 32 at x4, from one 128 x 128 face) as ``1 x 3 x h x w`` float64 [0, 1]."""
    name = {8: 'lr_face_16.png', 4: 'lr_face_32.png'}[scale]
    lr = np.asarray(Image.open(os.path.join(GOLDEN_DIR, name)).convert('RGB'), dtype=np.float64) / 255
    return torch.from_numpy(lr).permute(2, 0, 1)[None]


@pytest.mark.parametrize('scale, expected', [(4, 8_524_379), (8, 8_755_035)])
def test_parameter_counts_and_the_official_layouts_load_strictly(official_key_listing, scale, expected):
    layout = official_key_listing(KEYS, f'SISN x{scale} ')
    with torch.device('meta'):
        network = SISN(upscale=scale)
    assert sum(p.numel() for p in network.parameters()) == expected
    assert [(key, tuple(t.shape), t.dtype) for key, t in network.state_dict().items()] == [
        (key, shape, dtype) for key, (shape, dtype) in layout.items()]  # names, shapes and the official order
    state_dict = {key: torch.zeros(shape, dtype=dtype, device='meta') for key, (shape, dtype) in layout.items()}
    network.load_state_dict(state_dict, strict=True, assign=True)


@pytest.mark.parametrize('scale', [4, 8])
def test_golden_output_of_the_official_network(official_key_listing, seeded_state_dict, scale):
    golden = np.load(os.path.join(GOLDEN_DIR, 'sisn.npz'))
    network = SISN(upscale=scale)
    constructed = network.state_dict()
    reference = {key: constructed[key] if key in MEAN_SHIFT else torch.zeros(shape, dtype=dtype)
                 for key, (shape, dtype) in official_key_listing(KEYS, f'SISN x{scale} ').items()}
    weights = seeded_state_dict(reference, seed=int(golden['seed']), keep=MEAN_SHIFT)
    network.load_state_dict(weights, strict=True)
    network = network.double().eval()
    with torch.no_grad():
        sr = network(golden_lr(scale))
    assert sr.shape == (1, 3, 128, 128) and sr.dtype == torch.float64
    # the golden is in the official 0..255 units; compared here in the plugin's [0, 1]
    np.testing.assert_allclose(sr.numpy(), golden[f'sr_x{scale}'].astype(np.float64) / 255, rtol=0, atol=1e-4)


def test_the_mean_shift_is_trained_as_in_the_official_code_and_can_be_frozen():
    torch.manual_seed(0)
    network = SISN(upscale=2, **TINY)
    assert torch.equal(network.sub_mean.bias, -255 * torch.tensor(RGB_MEAN))
    assert torch.equal(network.add_mean.weight.flatten(), torch.eye(3).flatten())
    network(torch.rand(2, 3, 8, 8)).sum().backward()
    assert all(p.requires_grad and p.grad is not None and p.grad.any()
               for p in (*network.sub_mean.parameters(), *network.add_mean.parameters()))
    frozen = SISN(upscale=2, freeze_mean_shift=True, **TINY)
    assert list(frozen.state_dict()) == list(network.state_dict())
    assert sum(p.numel() for p in frozen.parameters() if not p.requires_grad) == 24  # 2 x (3 x 3 + 3)


def test_the_skip_convs_never_run():
    torch.manual_seed(0)
    network = SISN(upscale=2, **TINY)
    network(torch.rand(2, 3, 8, 8)).sum().backward()
    no_grad = {name for name, p in network.named_parameters() if p.grad is None}
    blocks = [name for name, module in network.named_modules() if isinstance(module, SplitAttentionBlock)]
    assert len(blocks) == 2 * (2 + 1)  # num_blocks in each group's body, and its IA
    assert no_grad == {f'{block}.skip.weight' for block in blocks}


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_the_head_sees_scale_squared_copies_of_the_shifted_lr(scale):
    torch.manual_seed(0)
    network = SISN(upscale=scale, **TINY).eval()
    lr = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    seen = {}
    network.head[1].register_forward_pre_hook(lambda module, inputs: seen.setdefault('head', inputs[0]))
    with torch.no_grad():
        sr = network.double()(lr)
    assert sr.shape == (1, 3, 5 * scale, 6 * scale)
    shifted = lr * 255 + network.sub_mean.bias.view(1, 3, 1, 1)  # minus 255 x the mean
    assert seen['head'].shape == (1, 3 * scale ** 2, 5, 6)
    for copy in seen['head'].split(3, dim=1):  # nearest x scale, then space-to-depth: one copy per offset
        assert torch.allclose(copy, shifted, rtol=0, atol=1e-12)


def test_the_official_pixel_range_lives_inside_the_forward():
    torch.manual_seed(0)
    network = SISN(upscale=2, **TINY).eval()
    last = network.tail[1]
    with torch.no_grad():
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        sr = network(torch.rand(1, 3, 4, 4))
    # a zero tail leaves add_mean's bias, 255 x the mean in official units: the mean in [0, 1]
    assert torch.allclose(sr, torch.tensor(RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 8, 8), atol=1e-6)


def test_split_attention_weights_sum_to_one_across_the_splits():
    torch.manual_seed(0)
    attention = SplitAttention(8).eval()
    with torch.no_grad():  # four identical splits: any convex combination of them is the split itself
        # each split's grouped conv sees its own quarter of the input channels: the same weights, the same quarter
        attention.conv.weight.copy_(attention.conv.weight[:8].repeat(4, 1, 1, 1))
        attention.bn0.weight.copy_(attention.bn0.weight[:8].repeat(4))
        attention.bn0.bias.copy_(attention.bn0.bias[:8].repeat(4))
        x = torch.randn(2, 2, 5, 5).repeat(1, 4, 1, 1)
        split = torch.relu(attention.bn0(attention.conv(x))[:, :8])
        assert torch.allclose(attention(x), split, atol=1e-6)
        attention.conv1x1_2.bias.add_(torch.arange(32.0))  # different gates per split do not change that
        assert torch.allclose(attention(x), split, atol=1e-6)


def test_scale_errors():
    with pytest.raises(ValueError, match='SISN upscale must be a power of two or 3'):
        SISN(upscale=6)
    with pytest.raises(ValueError, match='SISN upscale must be a power of two or 3'):
        SISN(upscale=1)
