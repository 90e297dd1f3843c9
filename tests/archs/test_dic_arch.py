"""DIC (docs/fidelity.md Part DIC): parameter counts and the official layout, the golden output of the official
network, the per-step outputs, statelessness between calls and the official quirks.

The released-size network runs once (float64, golden face); everything else uses a narrow DIC.
"""
import ast
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_plugin.archs.dic_arch import DIC, DIC_RGB_MEAN
from sfmnet_plugin.archs.dic_blocks import FeedbackHourGlass, ResidualBlock, merge_heatmaps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL_KEYS = os.path.join(REPO_ROOT, 'tests', 'data', 'dic_official_keys.txt')
GOLDEN = os.path.join(REPO_ROOT, 'tests', 'data', 'golden', 'dic.npz')
# Narrow DIC: 8 features, 2 projection groups, 3 steps, a 16-feature hourglass, one fusion block.
TINY = dict(num_features=8, num_groups=2, num_steps=3, hg_num_feature=16, num_fusion_block=1)


def count(module):
    return sum(p.numel() for p in module.parameters())


def official_layout(section='DIC'):
    """``{key: (shape, dtype)}`` of one network of the official key list (``## <section> ...``), in its order."""
    with open(OFFICIAL_KEYS, encoding='utf-8') as f:
        blocks = f.read().split('\n## ')[1:]
    block = next(block for block in blocks if block.startswith(section + ' '))
    layout = {}
    for line in block.splitlines()[1:]:
        if line.strip():
            key, shape, dtype = line.split('\t')
            layout[key] = (tuple(ast.literal_eval(shape)), dtype)
    return layout


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return DIC(**TINY, official_init=True).eval()


@pytest.fixture(scope='module')
def lr_batch():
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_parameter_counts_match_the_official_network():
    with torch.device('meta'):
        model = DIC()
    assert count(model) == 21_803_849
    assert count(model.HG) == 11_999_172
    assert [count(getattr(model, name)) for name in ('conv_in', 'first_block', 'block', 'out', 'conv_out')] == [
        5_377, 4_090_776, 5_559_720, 147_505, 1_299]
    assert count(model.block.fusion_block) == 1_466_640  # official counts of each part


def test_the_official_layout_loads_strictly_in_the_official_order():
    layout = official_layout()
    assert len(layout) == 296
    with torch.device('meta'):
        model = DIC()
    assert list(model.state_dict()) == list(layout)
    assert {key: tuple(t.shape) for key, t in model.state_dict().items()} == {k: s for k, (s, _) in layout.items()}
    state_dict = {key: torch.zeros(shape) for key, (shape, _) in layout.items()}
    DIC().load_state_dict(state_dict, strict=True)


def test_golden_output_of_the_official_network(golden_lr_face, seeded_state_dict):
    golden = np.load(GOLDEN)
    model = DIC()
    model.load_state_dict(seeded_state_dict(model.state_dict(), seed=int(golden['seed'])))
    model = model.double().eval()
    lr = torch.from_numpy(golden_lr_face.transpose(2, 0, 1).copy()).double()[None] / 255  # the LR PNG itself
    with torch.no_grad():
        sr_steps, heatmaps = model(lr, return_steps=True)
        final = model(lr)
    mean = np.asarray(DIC_RGB_MEAN).reshape(3, 1, 1)
    # the official network returns the SR image minus the dataset mean
    np.testing.assert_allclose(final[0].numpy() - mean, golden['sr'], rtol=0, atol=1e-5)
    assert torch.equal(final, sr_steps[-1])
    for step, rows in enumerate(golden['sr_steps_rows']):
        np.testing.assert_allclose(sr_steps[step][0, :, 60:64].numpy() - mean, rows, rtol=0, atol=1e-5)
    for step, maps in enumerate(golden['heatmap_steps_channels']):
        np.testing.assert_allclose(heatmaps[step][0, [0, 30, 36, 45, 48, 67]].numpy(), maps, rtol=1e-5,
                                   atol=1e-5 * np.abs(maps).max())


def test_per_step_outputs_and_shapes(tiny, lr_batch):
    with torch.no_grad():
        sr_steps, heatmaps = tiny(lr_batch, return_steps=True)
        final = tiny(lr_batch)
    assert len(sr_steps) == len(heatmaps) == 3
    assert all(sr.shape == (2, 3, 128, 128) for sr in sr_steps)
    assert all(heatmap.shape == (2, 68, 32, 32) for heatmap in heatmaps)
    assert torch.equal(final, sr_steps[-1])
    assert not torch.equal(sr_steps[0], sr_steps[1])


def test_the_same_input_gives_the_same_output_however_often_called(tiny, lr_batch):
    with torch.no_grad():
        first = tiny(lr_batch[:1], return_steps=True)
        tiny(lr_batch[1:])  # another face in between: the official blocks would keep its state on the module
        tiny(torch.zeros(3, 3, 16, 16))
        again = tiny(lr_batch[:1], return_steps=True)
    for before, after in zip(first[0] + first[1], again[0] + again[1]):
        assert torch.equal(before, after)
    assert not any(isinstance(value, torch.Tensor) for module in tiny.modules() for value in vars(module).values())


def test_the_plain_call_skips_only_the_last_hourglass_pass(tiny, lr_batch):
    calls = []
    hook = tiny.HG.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            tiny(lr_batch)
            assert len(calls) == 2
            tiny(lr_batch, return_steps=True)
            assert len(calls) == 2 + 3
    finally:
        hook.remove()


def test_the_mean_shift_is_inside_forward(tiny):
    """The official range is image - mean: a constant-mean LR gives a zero residual branch input."""
    lr = torch.tensor(DIC_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    with torch.no_grad():
        sr_steps, _ = tiny(lr, return_steps=True)
        shifted = tiny.conv_out(tiny.out(tiny.first_block(tiny.feat_in(tiny.conv_in(lr - tiny.rgb_mean)))))
    torch.testing.assert_close(sr_steps[0], shifted + tiny.rgb_mean, rtol=0, atol=1e-6)


def test_merge_heatmaps_normalises_by_the_peak_at_least_005_and_sums_the_official_groups():
    heatmap = torch.zeros(1, 68, 4, 4)
    heatmap[0, 36, 0, 0] = 2.0   # left eye: peak 2 -> 1
    heatmap[0, 41, 1, 1] = 0.01  # left eye: peak 0.01 < 0.05 -> 0.2
    heatmap[0, 45, 2, 2] = 3.0   # right eye
    heatmap[0, 30, 3, 3] = 1.0   # nose
    heatmap[0, 67, 0, 3] = 0.5   # mouth
    heatmap[0, 26, 3, 0] = 4.0   # eyebrow: counted with the silhouette
    merged = merge_heatmaps(heatmap)
    assert merged.shape == (1, 5, 4, 4)
    assert merged[0, 0, 0, 0] == 1.0 and merged[0, 0, 1, 1] == pytest.approx(0.2)
    assert merged[0, 1, 2, 2] == 1.0 and merged[0, 2, 3, 3] == 1.0 and merged[0, 3, 0, 3] == 1.0
    assert merged[0, 4, 3, 0] == 1.0 and merged.sum() == pytest.approx(5.2)
    with pytest.raises(ValueError, match='68 landmark heatmaps'):
        merge_heatmaps(torch.zeros(1, 7, 4, 4))


def test_hourglass_residual_blocks_have_no_relu_after_the_3x3_conv():
    block = ResidualBlock(8, 16)
    assert [type(layer).__name__ for layer in block.conv_block] == ['Conv2d', 'ReLU', 'Conv2d', 'Conv2d']
    hourglass = FeedbackHourGlass(16, 68)
    x = torch.randn(1, 3, 64, 64)
    heatmap, hidden = hourglass(x)
    assert heatmap.shape == (1, 68, 16, 16) and hidden.shape == (1, 16, 16, 16)
    again, _ = hourglass(x, hidden)
    assert not torch.equal(heatmap, again)  # the hidden half feeds back


def test_detach_attention_stops_the_sr_loss_reaching_the_hourglass(lr_batch):
    for detach, reaches in ((False, True), (True, False)):
        torch.manual_seed(0)
        model = DIC(**TINY, detach_attention=detach)
        model(lr_batch).abs().mean().backward()
        grads = [p.grad for p in model.HG.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads) == reaches


def test_float64_builds_on_meta_and_registry_and_bad_options():
    model = build_network({'type': 'DIC', **TINY}).double()
    assert model(torch.rand(1, 3, 16, 16, dtype=torch.float64)).dtype == torch.float64
    with torch.device('meta'):
        assert DIC(**TINY).rgb_mean.device.type == 'meta'
    with pytest.raises(ValueError, match='x8 network'):
        DIC(upscale=4)
    with pytest.raises(ValueError, match='hg_num_keypoints'):
        DIC(hg_num_keypoints=194)


EVAL_GOLDEN = os.path.join(REPO_ROOT, 'tests', 'data', 'golden', 'dic_eval_hourglass.npz')


def test_the_official_evaluation_hourglass_layout_and_golden(golden_lr_face, seeded_state_dict):
    """HG_68_CelebA.pth's network (eval_landmark.py): 12,952,848 parameters, the official keys, its heatmaps and
    the landmarks as eval_landmark.py reads them, on the golden face upsampled by PIL."""
    from PIL import Image

    from sfmnet_plugin.archs.dic_blocks import StackedHourGlass
    from sfmnet_plugin.inference.dic_landmarks import evaluation_peaks

    layout = official_layout('StackedHourGlass')
    model = StackedHourGlass()
    assert count(model) == 12_952_848 and len(layout) == 1308
    assert {key: tuple(t.shape) for key, t in model.state_dict().items()} == {k: s for k, (s, _) in layout.items()}
    assert list(model.state_dict()) == list(layout)
    golden = np.load(EVAL_GOLDEN)
    model.load_state_dict(seeded_state_dict(model.state_dict(), seed=int(golden['seed'])))
    model = model.double().eval()
    face = np.asarray(Image.fromarray(golden_lr_face).resize((128, 128), Image.BICUBIC))
    x = torch.from_numpy(face.transpose(2, 0, 1).copy()).double()[None] / 255 - torch.tensor(
        DIC_RGB_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        heatmaps = model(x)[0].numpy()
    maps = golden['heatmaps']
    np.testing.assert_allclose(heatmaps[golden['channels']], maps, rtol=1e-5, atol=1e-5 * np.abs(maps).max())
    np.testing.assert_array_equal(evaluation_peaks(heatmaps), golden['landmarks'])
