"""The verification columns state the fold count the accuracy was computed with."""
import numpy as np

from sfmnet_plugin.benchmark.set_metrics import VerificationRun
from sfmnet_plugin.metrics.verification import Pair, PairList, fold_ids


def run_with(pairs):
    pair_list = PairList('pairs.csv', 'csv', tuple(pairs))
    return VerificationRun(pair_list, [], fold_ids(pair_list.pairs), 'dlib', None, set(), {}, set())


def test_a_five_fold_list_is_headed_five_fold_and_a_list_without_folds_ten_fold():
    five = [Pair(f'a{i}', f'b{i}', i % 2 == 0, i + 1, fold=i % 5) for i in range(40)]
    headers = [column.title for column in run_with(five).columns()]
    assert 'Verif. acc. (5-fold)' in headers and not any('10-fold' in header for header in headers)
    plain = [Pair(f'a{i}', f'b{i}', i % 2 == 0, i + 1) for i in range(40)]
    assert 'Verif. acc. (10-fold)' in [column.title for column in run_with(plain).columns()]
    assert len(set(np.asarray(run_with(plain).folds).tolist())) == 10
