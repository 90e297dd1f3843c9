"""The methods the plugin's models add to BasicSR's: saving, exact resume and non-finite guards.

:class:`PluginModelMethods` is a base of :class:`~sfmnet_plugin.models.face_sr_model.FaceSRModel` (so of every
model of the plugin), and the plugin's launchers give it to any other model they build
(:func:`with_plugin_methods`, for the length of the run). A BasicSR model in a process that imported the plugin,
run by BasicSR's own pipeline, keeps BasicSR's methods. Each method overrides one of ``BaseModel``/``SRModel``:

* ``save_network``: atomic, ``.pth`` or ``.safetensors`` with the network's options
  (:mod:`~sfmnet_plugin.compat.saving`), never non-finite weights;
* ``save_training_state``: atomic, plus the random states and (in a launcher run) the sample-stream position that
  make a resumed run equal a run that never stopped (:mod:`~sfmnet_plugin.compat.resume`), and the fp16 gradient
  scaler; ``resume_training`` restores the scaler;
* ``validation``: leaves the training's random streams where they were (and, in a launcher run, is skipped when
  the weights did not change since the last validation on that dataset: :class:`~sfmnet_plugin.compat.run_state.Run`);
* ``update_learning_rate`` (the training loop calls it before every step), ``reduce_loss_dict`` (every model logs
  its losses through it) and ``test`` (validation and testing): the iteration is recorded, a non-finite loss or
  output stops the run (:mod:`sfmnet_plugin.utils.nonfinite`).
"""
import logging

from sfmnet_plugin.compat import resume, saving
from sfmnet_plugin.compat.run_state import current_run
from sfmnet_plugin.utils.nonfinite import check_finite_losses, check_finite_network, check_finite_output


class PluginModelMethods:
    """Mixin for a BasicSR model class (before it in the bases); see the module docstring."""

    # No option keys beyond BaseModel's: path.network_format is valid for every model (sfmnet_plugin.config.
    # option_schema), since a launcher run gives every model these methods.
    option_keys: dict[str, set[str]] = {}

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        self.current_iter = current_iter
        run = current_run()
        if run is not None:
            run.step_begins()
        return super().update_learning_rate(current_iter, warmup_iter)

    def reduce_loss_dict(self, loss_dict):
        check_finite_losses(loss_dict, getattr(self, 'current_iter', '?'))
        return super().reduce_loss_dict(loss_dict)

    def test(self):
        super().test()
        check_finite_output(getattr(self, 'output', None), getattr(self, 'current_iter', None))

    def save_network(self, net, net_label, current_iter, param_key='params'):
        for network in net if isinstance(net, list) else [net]:
            check_finite_network(self.get_bare_model(network), net_label, getattr(self, 'current_iter', current_iter))
        saving.write_network_file(self, net, net_label, current_iter, param_key)

    def save_training_state(self, epoch, current_iter):
        saving.write_training_state(self, epoch, current_iter, resume.resume_extras(self, current_iter))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        scaler = getattr(self, 'grad_scaler', None)
        if scaler is not None and resume_state.get('grad_scaler'):
            scaler.load_state_dict(resume_state['grad_scaler'])
        if resume.current_stream() is not None and 'sample_stream' not in resume_state:
            logging.getLogger('basicsr').warning(
                'resume: this training state has no sample position (saved by an older version): the epoch '
                'restarts from its first batch and random numbers are not restored.')

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        run = current_run()
        if run is not None:
            current_iter = run.validation_iteration(dataloader.dataset.opt.get('name'), current_iter)
            if current_iter is None:
                return None
        saved = resume.rng_states()
        try:
            return super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            resume.set_rng_states(saved)


_classes: dict[type, type] = {}  # BasicSR model class -> the same class with PluginModelMethods


def plugin_model_class(model_class):
    """``model_class`` with :class:`PluginModelMethods` (itself when it has them), same name and module."""
    if issubclass(model_class, PluginModelMethods):
        return model_class
    if model_class not in _classes:
        _classes[model_class] = type(model_class.__name__, (PluginModelMethods, model_class),
                                     {'__module__': model_class.__module__,
                                      '__qualname__': model_class.__qualname__})
    return _classes[model_class]


def with_plugin_methods(model):
    """``model`` (built by BasicSR's ``build_model``), now with :class:`PluginModelMethods`."""
    model.__class__ = plugin_model_class(type(model))
    return model
