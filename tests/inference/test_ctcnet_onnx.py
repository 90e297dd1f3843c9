"""CTCNet's operations through the ONNX exporter ``sfmnet-export`` uses (torch.onnx dynamo, opset 20): a local-global
block (hourglass attention, channel-attention transformers) and a multi-scale block (bilinear split, reused modules),
narrow, agree with ONNX Runtime to float32 rounding. The whole network goes through the same exporter; its graph (two
thousand tensors) makes that export too slow for the suite."""
import io

import pytest
import torch

from sfmnet_plugin.archs.ctcnet_blocks import LocalGlobalBlock, MultiScaleBlock


def test_ctcnet_blocks_export_and_run_in_onnx_runtime():
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    blocks = torch.nn.Sequential(LocalGlobalBlock(8, 2, 2, hourglass_depth=2, hourglass_channels=8),
                                 MultiScaleBlock(8, 2, 8)).eval()
    x = torch.randn(2, 8, 16, 16)
    buffer = io.BytesIO()
    torch.onnx.export(blocks, (x,), buffer, dynamo=True, opset_version=20)
    session = ort.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = blocks(x)
    assert float((torch.from_numpy(onnx_out) - expected).abs().max()) < 1e-5 * max(1.0, float(expected.abs().max()))
