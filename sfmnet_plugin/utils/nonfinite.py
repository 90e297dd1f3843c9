"""Stop training at the first non-finite loss, never save non-finite weights, never score non-finite outputs.

With a learning rate that is far too high the loss becomes NaN within a few iterations; BasicSR
trains on, saves NaN weights over the last good ones and validation still logs a finite "Best"
PSNR (NaN pixels become 0 when images are converted to uint8). The checks here turn each of
those moments into a :class:`NonFiniteError` naming the iteration and the loss term, network or
output. The plugin's model methods (:class:`~sfmnet_plugin.compat.model_methods.PluginModelMethods`, which every
model of the plugin has, and every model a launcher run builds) call them from hooks every BasicSR training loop
goes through, so no model has to remember them:

* ``reduce_loss_dict`` (every model logs its loss terms through it) -> :func:`check_finite_losses`;
* ``save_network`` -> :func:`check_finite_network`: the checkpoint of the last good iteration stays;
* ``SRModel.test`` (validation and testing) -> :func:`check_finite_output`.

Loading is guarded too: :func:`sfmnet_plugin.utils.safe_loading.load_torch_file`, the one way every
checkpoint and training state is read (inference, conversion, fine-tuning, resume), refuses a file
with a non-finite tensor and names it (:func:`first_nonfinite_tensor`).

A model that computes its losses elsewhere can call :func:`check_finite_losses` itself.
"""
import math

import torch


class NonFiniteError(RuntimeError):
    """A loss, weight or output became NaN or infinite; training or testing stops, nothing broken is saved."""


_ADVICE = ('Training stopped; the last checkpoint saved before it is kept. Lower the learning rate (train.optim_g.lr), '
           'set train.grad_clip_norm, or use train.mixed_precision: none, then resume with --auto_resume.')


def _is_finite(value):
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    return math.isfinite(float(value))


def _all_finite(tensor):
    """``torch.isfinite(tensor).all()`` without a boolean copy: NaN propagates to the minimum and maximum, and an
    infinity is one of them; one reduction pass over the tensor, no tensor of its size allocated."""
    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor.detach())
    return bool(torch.isfinite(low) & torch.isfinite(high))


def check_finite_losses(losses, iteration):
    """Raise :class:`NonFiniteError` naming ``iteration`` and the first term of ``losses`` (name -> value) that is
    NaN or infinite."""
    for name, value in losses.items():
        if value is not None and not _is_finite(value):
            shown = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)
            raise NonFiniteError(f'iteration {iteration}: loss term {name} is {shown} (not finite). {_ADVICE}')


def check_finite_network(net, label, iteration):
    """Raise :class:`NonFiniteError` before ``net`` (saved as ``label``) is written if any parameter is not finite."""
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not _is_finite(tensor):
            raise NonFiniteError(f'iteration {iteration}: {label} parameter {name} is not finite, so it was not saved '
                                 f'(the previous {label} checkpoint is kept). {_ADVICE}')


def first_nonfinite_tensor(obj, name=''):
    """The dotted name of the first floating-point tensor in ``obj`` (nested dicts, lists, tuples) holding NaN or
    inf, or None when every tensor is finite."""
    if isinstance(obj, torch.Tensor):
        return (name or '<tensor>') if obj.is_floating_point() and not _all_finite(obj) else None
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = first_nonfinite_tensor(value, f'{name}.{key}' if name else str(key))
        if found is not None:
            return found
    return None


def check_finite_output(output, iteration):
    """Raise :class:`NonFiniteError` if a network output to be scored is not finite: its metrics would be fiction."""
    if output is not None and not _is_finite(output):
        when = f'after iteration {iteration}' if iteration is not None else 'when testing'
        raise NonFiniteError(f'the network output is not finite (NaN or inf) {when}; no metric is reported for it. '
                             'The weights are broken: test an earlier checkpoint.')


def first_nonfinite_onnx_weight(path):
    """The name of the first floating-point weight (initializer or ``Constant``) of the ONNX file ``path`` holding
    NaN or inf, or None: the ONNX counterpart of the check every ``.pth`` and ``.safetensors`` gets on load (ONNX
    Runtime runs such a graph and returns NaN images). Needs the ``onnx`` package (the ``onnx`` extra)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = [(item.name, item) for item in graph.initializer]
    weights += [(node.output[0], attribute.t) for node in graph.node if node.op_type == 'Constant'
                for attribute in node.attribute if attribute.name == 'value']
    for name, tensor in weights:
        array = numpy_helper.to_array(tensor)
        if array.dtype.kind in 'fc' and array.size and not np.isfinite(array).all():
            return name
    return None
