"""The launcher run in progress in this process, as the plugin's model methods see it.

:func:`sfmnet_plugin.launch.session.run_session` makes a :class:`Run` current for the length of one BasicSR
pipeline; the methods of :class:`~sfmnet_plugin.compat.model_methods.PluginModelMethods` and the run's replaced
BasicSR names read it. Outside a launcher run there is none, and a model behaves as in BasicSR's own pipelines.
"""
import logging
from contextlib import contextmanager

_current = None


class Run:
    """One launcher run: its training stream (training only) and its progress.

    The progress decides two things: whether the run has started its real work (a run that fails before that
    removes the folders it created), and whether a validation would score unchanged weights (no training step
    since the last validation on that dataset: BasicSR validates again after its loop, logged as iteration
    ``total_iter + 1``), which is skipped.
    """

    def __init__(self, stream=None):
        self.stream = stream
        self.total_iter = None  # training runs
        self.steps = 0
        self.started = False
        self.validated_at_step = {}
        self.notices = []  # lines for the run's log, said before BasicSR created its logger (e.g. by resume)

    def model_built(self, opt, model):
        """BasicSR built the run's ``model``: a stop signal now saves it."""
        if opt['is_train']:
            self.total_iter = int(opt['train']['total_iter'])
        if self.stream is not None:
            self.stream.model = model

    def step_begins(self):
        self.started = True
        self.steps += 1

    def validation_iteration(self, dataset_name, current_iter):
        """The iteration to log a validation of ``dataset_name`` at ``current_iter`` under, or None to skip it."""
        if self.total_iter is None:  # testing
            self.started = True
            return current_iter
        current_iter = min(current_iter, self.total_iter)
        if self.steps and self.validated_at_step.get(dataset_name) == self.steps:
            logging.getLogger('basicsr').info(
                f'{dataset_name}: the final weights were validated at iteration {current_iter} already.')
            return None
        self.validated_at_step[dataset_name] = self.steps
        return current_iter


def current_run():
    """The :class:`Run` in progress, or None outside the plugin's launchers."""
    return _current


@contextmanager
def running(run):
    """``run`` is the current run inside the ``with`` block."""
    global _current
    previous, _current = _current, run
    try:
        yield run
    finally:
        _current = previous
