"""The library inference API (``FaceRestorer``) that sfmnet-infer and other people's code share."""
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils import tensor2img

from sfmnet_plugin.inference import FaceRestorer, InferenceError

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 3}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    network = build_network(dict(TINY)).eval()
    path = tmp_path_factory.mktemp('restorer') / 'tiny.pth'
    torch.save({'params': network.state_dict()}, path)
    return network, path


def test_restore_image_equals_the_network_clamped_and_rounded(checkpoint):
    network, path = checkpoint
    restorer = FaceRestorer(str(path), network=TINY, device='cpu')
    lr = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = tensor2img(network(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255.)[0],
                              rgb2bgr=False, min_max=(0, 1))
    sr = restorer.restore_image(lr)
    assert sr.shape == (32, 32, 3) and sr.dtype == np.uint8
    np.testing.assert_array_equal(sr, expected)
    assert restorer.scale == 4 and restorer.num_parameters == sum(p.numel() for p in network.parameters())
    assert not restorer.net.training


def test_restore_batches_and_scale_override(checkpoint):
    _, path = checkpoint
    restorer = FaceRestorer(str(path), network={**TINY, 'upscale': 8}, scale=4, device='cpu')
    lr = torch.rand(3, 3, 8, 8)
    sr = restorer.restore(lr)
    assert sr.shape == (3, 3, 32, 32) and sr.device.type == 'cpu'
    torch.testing.assert_close(restorer.restore(lr[1:2]), sr[1:2])


def test_clear_errors(checkpoint, tmp_path):
    _, path = checkpoint
    with pytest.raises(InferenceError, match='not a registered'):
        FaceRestorer(str(path), network={'type': 'NoSuchNet'})
    with pytest.raises(InferenceError, match='checkpoint not found'):
        FaceRestorer(str(tmp_path / 'missing.pth'), network=TINY)
    with pytest.raises(InferenceError, match='num_feat 8 but the network has 16'):
        FaceRestorer(str(path), network={**TINY, 'num_feat': 16})
