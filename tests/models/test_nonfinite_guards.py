"""A diverging run stops at the first non-finite loss, keeps the last good checkpoint and reports no metric of
non-finite outputs, and non-finite weights or training states are never loaded."""
import os

import pytest
import torch

from sfmnet_plugin.compat.resume import load_resume_state
from sfmnet_plugin.utils.nonfinite import NonFiniteError, check_finite_losses


def test_check_names_the_iteration_and_the_term():
    check_finite_losses({'l_pix': torch.tensor(0.5), 'l_total': 0.7}, 3)
    with pytest.raises(NonFiniteError, match=r'iteration 3: loss term l_phase is nan'):
        check_finite_losses({'l_pix': torch.tensor(0.5), 'l_phase': torch.tensor(float('nan'))}, 3)
    with pytest.raises(NonFiniteError, match='l_total is inf'):
        check_finite_losses({'l_total': float('inf')}, 9)


def test_diverging_training_stops_and_keeps_the_last_good_checkpoint(tmp_path, build_seeded_model, face_batch,
                                                                     model_options):
    options = model_options('SFMNetModel')
    options['train']['optim_g']['lr'] = 1e30  # Adam moves every weight by ~lr: the next forward overflows
    options['path'] = {'models': str(tmp_path), 'training_states': str(tmp_path)}
    model = build_seeded_model(options)
    model.feed_data(face_batch())
    model.update_learning_rate(1)
    model.optimize_parameters(1)  # finite loss, then a step to astronomic weights
    model.save_network(model.net_g, 'net_g', 1)
    good = torch.load(tmp_path / 'net_g_1.pth', weights_only=True)['params']
    with pytest.raises(NonFiniteError, match='iteration 2: loss term l_pix'):
        model.update_learning_rate(2)
        model.optimize_parameters(2)
    # the broken weights are never written, under a new name or over the good file
    with pytest.raises(NonFiniteError, match='net_g parameter'):
        for p in model.net_g.parameters():
            p.data.fill_(float('nan'))
        model.save_network(model.net_g, 'net_g', 2)
    assert sorted(os.listdir(tmp_path)) == ['net_g_1.pth']
    reread = torch.load(tmp_path / 'net_g_1.pth', weights_only=True)['params']
    assert all(torch.equal(good[k], reread[k]) for k in good)


def test_validation_reports_no_metric_of_a_non_finite_output(build_seeded_model, face_batch, model_options):
    model = build_seeded_model(model_options('SFMNetModel'))
    for p in model.net_g.parameters():
        p.data.fill_(float('nan'))
    model.feed_data(face_batch())
    with pytest.raises(NonFiniteError, match='not finite'):
        model.test()


def test_diverging_run_through_the_launcher_exits_non_zero(tmp_path, launcher_env, repo_root, toy_base_options,
                                                           write_paired_folders, write_yaml):
    import subprocess
    import sys

    data_root = tmp_path / 'data'
    write_paired_folders(str(data_root / 'train'), count=4, gt_size=32, scale=2, seed=0)
    write_paired_folders(str(data_root / 'val'), count=1, gt_size=32, scale=2, seed=1)
    opt = toy_base_options(data_root)
    opt['name'] = 'diverges'
    opt['train']['optim_g']['lr'] = 1e30
    opt['logger'].update(save_checkpoint_freq=1, use_tb_logger=False)
    opt['val']['val_freq'] = 100
    option_file = str(write_yaml(tmp_path / 'd.yml', opt))
    result = subprocess.run([sys.executable, 'sfmnet_plugin/train.py', '-opt', option_file], cwd=repo_root,
                            env=launcher_env(tmp_path / 'root'), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'error: iteration 2: loss term l_pix' in result.stderr and 'Traceback' not in result.stderr
    models = tmp_path / 'root' / 'experiments' / 'diverges' / 'models'
    assert sorted(os.listdir(models)) == ['net_g_1.pth']
    weights = torch.load(models / 'net_g_1.pth', weights_only=True)['params']
    assert all(torch.isfinite(t).all() for t in weights.values())


# ------------------------------------------------------------------ non-finite weights are never loaded


def test_fine_tuning_from_non_finite_weights_is_refused(tmp_path, build_seeded_model, model_options):
    """path.pretrain_network_g (BasicSR's load_network, also what a resume loads the networks with)."""
    from sfmnet_plugin.utils.safe_loading import NonFiniteWeightsError

    options = model_options('SFMNetModel')
    params = build_seeded_model(options).net_g.state_dict()
    name = sorted(params)[-1]
    params[name].view(-1)[0] = float('-inf')
    torch.save({'params': params}, tmp_path / 'net_g_nan.pth')
    options['path'] = {'pretrain_network_g': str(tmp_path / 'net_g_nan.pth'), 'strict_load_g': True}
    with pytest.raises(NonFiniteWeightsError, match=f'net_g_nan.pth: refused, tensor params.{name} is not finite'):
        build_seeded_model(options)


def test_resuming_from_a_non_finite_state_is_refused(tmp_path, capsys):
    """An explicit path.resume_state is refused; --auto_resume skips it (with a warning) for the newest sound one."""
    from sfmnet_plugin.utils.safe_loading import NonFiniteWeightsError

    states = tmp_path / 'training_states'
    states.mkdir()
    sound = {'iter': 2, 'epoch': 0, 'optimizers': [{'state': {0: {'exp_avg': torch.zeros(3)}}}], 'schedulers': []}
    torch.save(sound, states / '2.state')
    torch.save(dict(sound, iter=4, optimizers=[{'state': {0: {'exp_avg': torch.tensor([0., float('nan'), 0.])}}}]),
               states / '4.state')
    with pytest.raises(NonFiniteWeightsError, match=r'4.state: refused, tensor optimizers.0.state.0.exp_avg'):
        load_resume_state({'auto_resume': False, 'num_gpu': 0,
                                         'path': {'resume_state': str(states / '4.state')}})
    opt = {'auto_resume': True, 'num_gpu': 0, 'path': {'training_states': str(states)}}
    assert load_resume_state(opt)['iter'] == 2
    assert '4.state: refused, tensor optimizers.0.state.0.exp_avg is not finite' in capsys.readouterr().err
