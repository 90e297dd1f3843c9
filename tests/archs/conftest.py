"""Fixtures of the architecture tests."""
import pytest
import torch
from torch.func import functional_call


def _dual_loss_backward(model, lr):
    """Backward of the mean of both outputs (spatial and frequency) of a dual-branch network; returns them."""
    model.zero_grad(set_to_none=True)
    sr_spatial, sr_frequency = model(lr, return_frequency=True)
    (sr_spatial.mean() + sr_frequency.mean()).backward()
    return sr_spatial, sr_frequency


def _gradcheck_inputs_and_parameters(module, *inputs):
    """Full gradcheck w.r.t. the inputs, and a fast (random-projection) one w.r.t. inputs and parameters together."""
    names = [name for name, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())

    def run(*args):
        return functional_call(module, dict(zip(names, args[len(inputs):])), args[:len(inputs)])

    tolerances = dict(eps=1e-6, atol=1e-5, rtol=1e-3)
    return (torch.autograd.gradcheck(module, inputs, **tolerances)
            and torch.autograd.gradcheck(run, inputs + params, fast_mode=True, **tolerances))


@pytest.fixture(scope='session')
def dual_loss_backward():
    """``dual_loss_backward(model, lr)``: see :func:`_dual_loss_backward`."""
    return _dual_loss_backward


@pytest.fixture(scope='session')
def gradcheck_inputs_and_parameters():
    """``gradcheck_inputs_and_parameters(module, *inputs)``: see :func:`_gradcheck_inputs_and_parameters`."""
    return _gradcheck_inputs_and_parameters
