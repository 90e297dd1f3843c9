"""The plugin's model methods beyond saving and the guards (tested with the launchers and test_nonfinite.py): the
fp16 gradient scaler goes into the training state and back, and validating never moves the random streams."""
import random

import numpy as np
import torch
from basicsr.models.base_model import BaseModel

from sfmnet_plugin.compat.model_methods import plugin_model_class


def bare_model(tmp_path, **attributes):
    """A BaseModel with the plugin's methods and only the attributes the tested methods use."""
    model = object.__new__(plugin_model_class(BaseModel))
    model.opt = {'dist': False, 'path': {'training_states': str(tmp_path)}}
    model.optimizers, model.schedulers = [], []
    vars(model).update(attributes)
    return model


def test_the_gradient_scaler_is_saved_and_resumed(tmp_path):
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    scaler.scale(torch.ones(1))  # the first scaled loss creates the scale
    scaler.update(new_scale=2048.0)
    bare_model(tmp_path, grad_scaler=scaler).save_training_state(0, 3)
    state = torch.load(tmp_path / '3.state', weights_only=True)
    assert state['grad_scaler']['scale'] == 2048.0 and 'rng_states' in state
    resumed = bare_model(tmp_path, grad_scaler=torch.amp.GradScaler('cpu'))
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == 2048.0


class RandomValidation(BaseModel):
    """A validation that draws from every random stream, as augmentations or samplers would."""

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        random.random(), np.random.rand(), torch.rand(1)


def test_validation_leaves_the_random_streams_alone(tmp_path):
    model = object.__new__(plugin_model_class(RandomValidation))
    model.opt = {'dist': False}
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    model.validation(None, 1, None)
    after_validation = random.random(), np.random.rand(), torch.rand(1)
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert after_validation == (random.random(), np.random.rand(), torch.rand(1))
