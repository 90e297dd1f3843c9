"""The pre-flight names a logger whose package is missing (wandb, TensorBoard) in one line, before anything starts."""
import importlib.util

import pytest

from sfmnet_plugin.launch.preflight import logger_problems


@pytest.fixture
def without(monkeypatch):
    """``without(*modules)``: those modules look uninstalled to the check."""
    def hide(*modules):
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name in modules else real(name, *a))
    return hide


def run(logger, name='x8'):
    return {'name': name, 'logger': logger}


def test_wandb_without_the_package_is_one_line_naming_the_extra(without):
    without('wandb')
    [problem] = logger_problems(run({'use_tb_logger': True, 'wandb': {'project': 'faces'}}), 'train')
    assert problem.startswith('logger.wandb.project: is set, but the wandb package is not installed')
    assert "pip install 'sfmnet-plugin[wandb]'" in problem and '\n' not in problem


def test_tensorboard_missing_and_wandb_without_tensorboard(without):
    without('tensorboard', 'wandb')
    problems = logger_problems(run({'use_tb_logger': True}), 'train')
    assert problems == ['logger.use_tb_logger: is set, but the tensorboard package is not installed; '
                        'pip install tensorboard, or remove the option.']
    problems = logger_problems(run({'use_tb_logger': False, 'wandb': {'project': 'faces'}}), 'train')
    assert problems[-1].startswith('logger.wandb.project: BasicSR logs to wandb only together with TensorBoard')


def test_no_problem_when_installed_unused_in_debug_runs_or_testing(without):
    assert logger_problems(run({'use_tb_logger': True, 'wandb': {'project': None}}), 'train') == []
    without('wandb', 'tensorboard')
    wandb = {'use_tb_logger': True, 'wandb': {'project': 'faces'}}
    assert logger_problems(run(wandb, name='debug_x8'), 'train') == []  # BasicSR starts no logger then
    assert logger_problems(run(wandb), 'test') == []
