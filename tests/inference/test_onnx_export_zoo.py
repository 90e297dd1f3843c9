"""Every registered face network exports through the TorchScript-based exporter (seconds, not the dynamo exporter's
minutes) into a graph that takes any batch, and ONNX Runtime gives PyTorch's output; the dynamo exporter, kept as
the fallback, gives it too for a network with the 8-bit input step."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from sfmnet_plugin.inference.onnx import OnnxNetwork, export_onnx
from sfmnet_plugin.utils.numerics import input_sensitivity

pytest.importorskip('onnxruntime')

# name -> (tiny network_g, LR size): narrow, shallow, and each one's x8 (or x4) path with its input step.
# SFMNet and SMLNet with phase_cut_width: the official phase jumps by 2 pi where a Fourier coefficient's imaginary
# part is within rounding of zero, which moves this tiny SFMNet by 2e-3 between two batch sizes in torch itself
# (docs/inference.md); the same graph without that jump is held to float32 rounding.
TINY = {
    'SFMNet': ({'type': 'SFMNet', 'upscale': 8, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
                'num_resblocks': 1, 'phase_cut_width': 1.0}, 8),
    'SMLNet': ({'type': 'SMLNet', 'upscale': 8, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
                'phase_cut_width': 1.0}, 8),
    'SPARNet': ({'type': 'SPARNet', 'upscale': 8, 'min_ch': 8, 'max_ch': 16, 'in_size': 64, 'out_size': 64,
                 'min_feat_size': 16, 'res_depth': 1}, 8),
    'SPARNetHD': ({'type': 'SPARNetHD', 'upscale': 4, 'min_ch': 8, 'max_ch': 16, 'in_size': 64, 'out_size': 64,
                   'min_feat_size': 16, 'res_depth': 1}, 16),
    'WFEN': ({'type': 'WFEN', 'upscale': 8, 'min_ch': 4, 'res_depth': 2}, 4),
    'CTCNet': ({'type': 'CTCNet', 'upscale': 8, 'num_feat': 8}, 16),
    'UFSRNet': ({'type': 'UFSRNet', 'upscale': 8, 'num_feat': 4}, 16),
    'SISN': ({'type': 'SISN', 'upscale': 8, 'num_groups': 1, 'num_blocks': 2, 'num_feat': 8}, 16),
    'DIC': ({'type': 'DIC', 'upscale': 8, 'num_features': 8, 'num_groups': 2, 'num_steps': 3, 'hg_num_feature': 16,
             'num_fusion_block': 1}, 16),
}


def tiny_network(name):
    options, lr_size = TINY[name]
    torch.manual_seed(0)
    net = build_network(dict(options))
    if any(hasattr(module, 'weight_u') for module in net.modules()):
        # spectral norm: a few power iterations, as training gives, so sigma is the weights' own and not that of
        # the random initial vectors (which scale SPARNetHD's output to ~1e7, float32 rounding included)
        net.train()
        with torch.no_grad():
            for _ in range(10):
                net(torch.rand(1, 3, lr_size, lr_size))
    return net.eval(), options, lr_size


def first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def assert_matches_torch(net, path, lr_size):
    onnx_net = OnnxNetwork(path)
    for batch in (1, 3):  # the export traced batch 2
        lr = torch.randint(0, 256, (batch, 3, lr_size, lr_size), generator=torch.Generator().manual_seed(batch)) / 255
        with torch.no_grad():
            expected = first_output(net(lr))
        sr = onnx_net(lr)
        assert sr.shape == expected.shape
        # ONNX Runtime sums in another order than torch: float32 rounding through the layers, or the network's own
        # amplification of a 1e-7 input change (SFMNet's phase) where that is larger
        bound = max(2 * input_sensitivity(net, lr), 1e-5 * max(1.0, float(expected.abs().max())))
        assert float((sr - expected).abs().max()) <= bound, f'batch {batch}'


def test_every_registered_face_network_has_a_tiny_export_config():
    networks = {name for name, cls in ARCH_REGISTRY
                if cls.__module__.startswith('sfmnet_plugin.archs') and 'Discriminator' not in name}
    assert networks == set(TINY)


@pytest.mark.parametrize('name', sorted(TINY))
def test_exports_by_tracing_into_a_graph_for_any_batch_that_matches_torch(tmp_path, name):
    net, options, lr_size = tiny_network(name)
    lines = []
    path = export_onnx(net, str(tmp_path / f'{name}.onnx'), (lr_size, lr_size), options, progress=lines.append)
    onnx_net = OnnxNetwork(path)
    assert onnx_net.metadata['exporter'] == 'torchscript' and onnx_net.metadata['network_g'] == options
    assert onnx_net.lr_size == (lr_size, lr_size)
    assert lines[0] == f'exporting {name} for {lr_size}x{lr_size} LR inputs (TorchScript-based exporter) ...'
    assert not any('dynamo' in line for line in lines)
    assert lines[-1].startswith('graph written by the torchscript exporter in ')
    assert_matches_torch(net, path, lr_size)


def test_the_dynamo_exporter_gives_the_same_network(tmp_path):
    """The fallback path, on the network whose dynamo export once rounded the 8-bit input step differently."""
    net, options, lr_size = tiny_network('UFSRNet')
    lines = []
    path = export_onnx(net, str(tmp_path / 'ufsrnet.onnx'), (lr_size, lr_size), options, progress=lines.append,
                       exporter='dynamo')
    assert OnnxNetwork(path).metadata['exporter'] == 'dynamo' and 'dynamo' in lines[0]
    assert_matches_torch(net, path, lr_size)


def test_a_disk_error_while_tracing_is_raised_not_taken_for_a_tracing_failure(tmp_path, monkeypatch):
    """An OSError writing the traced graph (a full disk) ends the export: falling back to dynamo would spend minutes
    to fail on the same disk."""
    exporters = []

    def full_disk(*args, dynamo, **kwargs):
        exporters.append('dynamo' if dynamo else 'torchscript')
        raise OSError(28, 'No space left on device', str(tmp_path / 'model.onnx'))

    monkeypatch.setattr(torch.onnx, 'export', full_disk)
    with pytest.raises(OSError, match='no space left'):
        export_onnx(tiny_network('UFSRNet')[0], str(tmp_path / 'model.onnx'), (16, 16))
    assert exporters == ['torchscript'] and list(tmp_path.iterdir()) == []
