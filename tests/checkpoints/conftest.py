"""What the official-checkpoint tests share: a raw official file restored by FaceRestorer and sfmnet-infer."""
import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_cli.infer import main as infer_main
from sfmnet_plugin.inference import FaceRestorer


def _check_restores_like(tmp_path, model, checkpoint, name, infer_with=()):
    """A seeded 16 x 16 face: ``FaceRestorer(checkpoint)``, given no network options, must find the network ``name``
    and restore it exactly as ``model`` in eval mode does, rounded to uint8; so must sfmnet-infer given each
    ``(checkpoint, extra arguments)`` of ``infer_with``. Returns the restorer."""
    lr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
    expected = (expected.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    restorer = FaceRestorer(str(checkpoint), device='cpu')
    assert restorer.official_network.name == name
    np.testing.assert_array_equal(restorer.restore_image(lr), expected)
    if infer_with:
        Image.fromarray(lr).save(tmp_path / 'face.png')
    for infer_checkpoint, arguments in infer_with:
        output = tmp_path / f'out_{infer_checkpoint.stem}'
        assert infer_main([str(tmp_path / 'face.png'), '--output', str(output), '--checkpoint', str(infer_checkpoint),
                           '--device', 'cpu', *arguments]) == 0
        np.testing.assert_array_equal(np.asarray(Image.open(output / 'face.png')), expected)
    return restorer


@pytest.fixture
def check_restores_like(tmp_path):
    """``check_restores_like(model, checkpoint, name, infer_with=())``: see :func:`_check_restores_like`."""
    return lambda *args, **kwargs: _check_restores_like(tmp_path, *args, **kwargs)
