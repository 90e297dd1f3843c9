"""What a plain BasicSR project gets from ``import sfmnet_plugin``: the registrations and the import fixes, never the
plugin's run behaviour. A BasicSR ``SRModel`` built next to the plugin saves, resumes and validates with BasicSR's
own code; the plugin's launchers give it the plugin's methods for one run only."""
import inspect
import os
import re
from os import path as osp

import pytest
import torch

import sfmnet_plugin  # noqa: F401  (the only plugin import a BasicSR project needs)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def defined_in_basicsr(function):
    """Whether ``function`` is BasicSR's own code (its source file lies in the installed basicsr package)."""
    import basicsr

    return osp.realpath(inspect.getsourcefile(function)).startswith(osp.realpath(osp.dirname(basicsr.__file__)))


def tiny_sr_model(tmp_path, **extra):
    """A plain BasicSR ``SRModel`` of BasicSR's SRVGGNetCompact (a few hundred parameters), built by BasicSR."""
    from basicsr.models import build_model

    opt = {'name': 'plain', 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0, 'dist': False, 'rank': 0,
           'world_size': 1, 'is_train': True,
           'network_g': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_conv': 1,
                         'upscale': 2},
           'path': {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'training_states'),
                    'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'scheduler': {'type': 'MultiStepLR', 'milestones': [9]},
                     'total_iter': 2, 'pixel_opt': {'type': 'L1Loss'}},
           'val': {'save_img': False}, **extra}
    for key in ('models', 'training_states'):
        os.makedirs(opt['path'][key], exist_ok=True)
    torch.manual_seed(0)
    return build_model(opt)


def test_a_plain_sr_model_keeps_basicsr_s_own_methods_and_pipelines(tmp_path):
    import basicsr.test
    import basicsr.train
    from basicsr.models.base_model import BaseModel
    from basicsr.models.sr_model import SRModel

    model = tiny_sr_model(tmp_path)
    assert type(model) is SRModel
    for name in ('save_network', 'save_training_state', 'resume_training', 'validation', 'update_learning_rate',
                 'reduce_loss_dict', 'test'):
        method = getattr(model, name).__func__
        owner = SRModel if name in SRModel.__dict__ else BaseModel
        assert method is owner.__dict__[name] and defined_in_basicsr(method), name
    for module, name in ((basicsr.train, 'train_pipeline'), (basicsr.train, 'load_resume_state'),
                         (basicsr.train, 'build_model'), (basicsr.train, 'MessageLogger'),
                         (basicsr.train, 'CPUPrefetcher'), (basicsr.train, 'mkdir_and_rename'),
                         (basicsr.train, 'make_exp_dirs'), (basicsr.test, 'make_exp_dirs'),
                         (basicsr.test, 'test_pipeline'), (basicsr.test, 'build_model')):
        assert defined_in_basicsr(getattr(module, name)), f'{module.__name__}.{name}'


def test_a_plain_sr_model_saves_in_basicsr_s_format_and_has_no_plugin_guards(tmp_path):
    import basicsr.train

    model = tiny_sr_model(tmp_path)
    model.save_network(model.net_g, 'net_g', 1)
    model.save_training_state(0, 1)
    network = torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)
    assert list(network) == ['params']  # BasicSR's: no network_g options in the file
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    assert sorted(state) == ['epoch', 'iter', 'optimizers', 'schedulers']  # no random states, no sample stream
    # BasicSR's resume: nothing to resume without --auto_resume or path.resume_state
    assert basicsr.train.load_resume_state({'auto_resume': False, 'path': {'resume_state': None}}) is None
    for parameter in model.net_g.parameters():  # BasicSR scores (and saves) non-finite outputs without a word
        parameter.data.fill_(float('nan'))
    model.feed_data({'lq': torch.rand(1, 3, 4, 4)})
    model.test()
    assert torch.isnan(model.output).all()
    model.save_network(model.net_g, 'net_g', 2)
    assert (tmp_path / 'models' / 'net_g_2.pth').is_file()


def test_the_launcher_gives_a_plain_model_the_plugin_methods_for_its_own_class_only(tmp_path):
    from basicsr.models.sr_model import SRModel

    from sfmnet_plugin.compat.model_methods import PluginModelMethods, with_plugin_methods
    from sfmnet_plugin.utils.nonfinite import NonFiniteError

    model = with_plugin_methods(tiny_sr_model(tmp_path))  # what a launcher run does with the model it builds
    assert isinstance(model, (PluginModelMethods, SRModel)) and type(model).__name__ == 'SRModel'
    model.save_network(model.net_g, 'net_g', 1)
    assert torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)['network_g']['type'] == 'SRVGGNetCompact'
    for parameter in model.net_g.parameters():
        parameter.data.fill_(float('nan'))
    with pytest.raises(NonFiniteError):
        model.save_network(model.net_g, 'net_g', 2)
    other = tiny_sr_model(tmp_path / 'other')  # the class itself is untouched
    assert type(other) is SRModel and not isinstance(other, PluginModelMethods)


def documented_names():
    """Every ``basicsr....`` name in the first column of the tables of docs/basicsr_changes.md."""
    with open(osp.join(REPO_ROOT, 'docs', 'basicsr_changes.md'), encoding='utf-8') as f:
        rows = [line for line in f if line.startswith('| `')]
    return {name for row in rows for name in re.findall(r'`(basicsr\.[\w.]+)`', row.split('|')[1])}


def test_the_docs_table_lists_every_change_and_nothing_else():
    from basicsr.models.sr_model import SRModel

    from sfmnet_plugin.compat.changes import process_changes, qualified_name
    from sfmnet_plugin.compat.model_methods import PluginModelMethods
    from sfmnet_plugin.compat.run_state import Run
    from sfmnet_plugin.launch.folders import RunFolders
    from sfmnet_plugin.launch.session import run_changes

    run_scope = {qualified_name(owner, name) for stage in ('train', 'test')
                 for owner, name, _ in run_changes(stage, Run(), RunFolders())}
    methods = {qualified_name(next(cls for cls in SRModel.__mro__ if name in cls.__dict__), name)
               for name, value in vars(PluginModelMethods).items() if inspect.isfunction(value)}
    changed = set(process_changes()) | run_scope | methods
    assert not set(process_changes()) & run_scope, 'a name changed at import and again in a run'
    assert documented_names() == changed
