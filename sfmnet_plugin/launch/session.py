"""One launcher run: the BasicSR names it changes, each once, for the length of the pipeline it wraps.

:func:`run_session` wraps one BasicSR train or test pipeline run by the plugin's launchers (it receives the
launcher's :class:`~sfmnet_plugin.launch.request.RunRequest`). :func:`run_changes` lists what it replaces, one
line per BasicSR name (:class:`~sfmnet_plugin.compat.changes.RunChanges` refuses a second replacement), and
everything is put back when the ``with`` block ends:

* the model BasicSR builds gets the plugin's model methods (:mod:`sfmnet_plugin.compat.model_methods`: atomic and
  safetensors saves with options, non-finite guards, exact resume), whatever its class;
* resume reads the experiment's own folder and continues the same sample stream; SIGINT/SIGTERM save a
  checkpoint before the run exits (:mod:`sfmnet_plugin.compat.resume`);
* the terminal shows a start banner (:mod:`.banner`), the ETA counts the iterations this run timed
  (:mod:`.eta`), the run's folders are locked, only they are created, and they are removed again if the run
  never started (:mod:`.folders`), and
  the validation BasicSR repeats after its loop on unchanged weights is skipped
  (:class:`~sfmnet_plugin.compat.run_state.Run`).
"""
from contextlib import ExitStack, contextmanager

from sfmnet_plugin.compat import resume
from sfmnet_plugin.compat.changes import RunChanges
from sfmnet_plugin.compat.model_methods import with_plugin_methods
from sfmnet_plugin.compat.run_state import Run, running
from sfmnet_plugin.launch.banner import announce, filtered_root_logger, log_file_only, logging_the_backend_in_use
from sfmnet_plugin.launch.eta import eta_message_logger_class
from sfmnet_plugin.launch.folders import RunFolders, make_exp_dirs


def run_changes(stage, run, folders):
    """``(owner, name, replacement)`` for every BasicSR name a run of ``stage`` ('train' | 'test') changes."""
    import basicsr.test as basicsr_test
    import basicsr.train as basicsr_train
    import basicsr.utils.misc as basicsr_misc

    pipeline = basicsr_train if stage == 'train' else basicsr_test
    build_dataset, build_model = pipeline.build_dataset, pipeline.build_model
    get_root_logger = filtered_root_logger(pipeline.get_root_logger)
    datasets = []

    def run_build_dataset(dataset_opt):
        dataset = build_dataset(dataset_opt)
        datasets.append((dataset_opt.get('phase', 'test'), dataset))
        return dataset

    def run_get_root_logger(*args, **kwargs):
        logger = get_root_logger(*args, **kwargs)
        while run.notices:  # said before the logger existed (resume): now in the log file and on the terminal
            logger.warning(run.notices.pop(0))
        return logger

    def run_build_model(opt):
        model = with_plugin_methods(build_model(opt))
        run.model_built(opt, model)
        announce(opt, model, datasets)
        return model

    changes = [
        (pipeline, 'build_dataset', run_build_dataset),
        (pipeline, 'build_model', run_build_model),
        (pipeline, 'get_root_logger', run_get_root_logger),
        (pipeline, 'get_env_info', log_file_only(pipeline.get_env_info)),  # the ASCII-art banner: log file only
        # the options: log file only, with the process group's backend
        (pipeline, 'dict2str', log_file_only(logging_the_backend_in_use(pipeline.dict2str))),
        (basicsr_misc, 'mkdir_and_rename', folders.mkdir_and_rename(basicsr_misc.mkdir_and_rename)),  # make_exp_dirs
        (pipeline, 'make_exp_dirs', make_exp_dirs),  # only the run's own folders
    ]
    if stage == 'train':
        def run_load_resume_state(opt):
            resume_state = resume.load_resume_state(opt)
            if resume_state is not None and opt.get('rank', 0) == 0:  # a resumed run uses its folder as it is
                folders.claim(opt['path']['experiments_root'])
            return resume_state

        changes += [
            (basicsr_train, 'load_resume_state', run_load_resume_state),
            (basicsr_train, 'CPUPrefetcher', resume.resumable_prefetcher(basicsr_train.CPUPrefetcher)),
            (basicsr_train, 'CUDAPrefetcher', resume.resumable_prefetcher(basicsr_train.CUDAPrefetcher)),
            (basicsr_train, 'MessageLogger', eta_message_logger_class(basicsr_train.MessageLogger)),
            (basicsr_train, 'mkdir_and_rename', folders.mkdir_and_rename(basicsr_train.mkdir_and_rename)),  # tb_logger
        ]
    return changes


@contextmanager
def run_session(request):
    """Apply the behaviour of the module docstring to the pipeline run inside, the one of ``request.stage``
    (a :class:`~sfmnet_plugin.launch.request.RunRequest`)."""
    training = request.stage == 'train'
    run, folders, changes = Run(resume.TrainingStream() if training else None), RunFolders(), RunChanges()
    with ExitStack() as stack:
        stack.enter_context(running(run))
        if training:
            stack.enter_context(resume.stop_on_signals(run.stream))
        stack.callback(folders.release)
        stack.callback(changes.restore)
        for owner, name, value in run_changes(request.stage, run, folders):
            changes.replace(owner, name, value)
        try:
            yield run
        except BaseException:
            if not run.started:
                folders.undo()
            raise
