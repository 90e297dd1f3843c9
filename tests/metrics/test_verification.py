"""Face verification arithmetic and pair lists (sfmnet_plugin.metrics.verification)."""
import numpy as np
import pytest

from sfmnet_plugin.metrics.verification import (
    Pair,
    PairList,
    PairListError,
    best_threshold,
    evaluate_verification,
    fold_ids,
    read_pairs,
    resolve_pairs,
    roc_auc,
    roc_curve,
    set_embedding,
    tar_at_far,
    ten_fold_accuracy,
)


def brute_force_ten_fold(scores, same, folds):
    """The protocol written out with loops: every candidate threshold tried, the lowest best one kept."""
    scores, same, folds = list(map(float, scores)), list(map(bool, same)), list(folds)
    accuracies = []
    for fold in dict.fromkeys(folds):
        train = [(s, y) for s, y, f in zip(scores, same, folds) if f != fold]
        test = [(s, y) for s, y, f in zip(scores, same, folds) if f == fold]
        distinct = sorted({s for s, _ in train})
        candidates = [-float('inf')] + [(a + b) / 2 for a, b in zip(distinct, distinct[1:])] + [float('inf')]
        best, best_correct = None, -1
        for threshold in candidates:
            correct = sum((s > threshold) == y for s, y in train)
            if correct > best_correct:
                best, best_correct = threshold, correct
        accuracies.append(sum((s > best) == y for s, y in test) / len(test))
    return accuracies


def test_ten_fold_accuracy_known_answer():
    # every fold: same pairs score 0.9, different 0.1, except one different pair in fold 0 scoring 0.95
    scores = np.tile([0.9, 0.1], 10)
    same = np.tile([True, False], 10)
    scores[1] = 0.95
    result = ten_fold_accuracy(scores, same, fold_ids([Pair('a', 'b', bool(s), 1) for s in same]))
    assert result.accuracies == (0.5,) + (1.0,) * 9
    assert result.mean == pytest.approx(0.95)
    assert result.std == pytest.approx(np.std([0.5] + [1.0] * 9))
    assert result.standard_error == pytest.approx(np.std([0.5] + [1.0] * 9, ddof=1) / np.sqrt(10))
    assert 0.1 < result.thresholds[1] < 0.9


@pytest.mark.parametrize('count, distinct_values', [(600, 1000), (203, 1000), (157, 4)])
def test_ten_fold_accuracy_equals_brute_force(count, distinct_values):
    """Random scores, unequal folds (203, 157 pairs) and heavy ties (4 distinct values)."""
    rng = np.random.default_rng(count)
    same = rng.random(count) < 0.5
    scores = rng.integers(0, distinct_values, count) / distinct_values + 0.3 * same
    folds = fold_ids([Pair('a', 'b', bool(s), i) for i, s in enumerate(same)])
    if count % 10:
        sizes = np.bincount(folds)
        assert sizes.max() - sizes.min() == 1 and sizes.sum() == count
    result = ten_fold_accuracy(scores, same, folds)
    assert result.accuracies == pytest.approx(brute_force_ten_fold(scores, same, folds))


def test_tied_scores_get_one_call_and_the_lowest_best_threshold_wins():
    # 0.5 is tied between a same and a different pair: any threshold gives 3 of 4 right
    assert best_threshold([0.2, 0.5, 0.5, 0.8], [False, True, False, True]) == 0.35
    assert best_threshold([0.2, 0.8], [False, True]) == 0.5


def test_own_folds_are_kept():
    pairs = [Pair('a', 'b', True, 1, fold=3), Pair('a', 'b', False, 2, fold=7)]
    assert fold_ids(pairs).tolist() == [3, 7]


def test_roc_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    rng = np.random.default_rng(0)
    same = rng.random(300) < 0.4
    scores = np.round(rng.normal(same * 1.0, 1.0), 1)  # rounded: many ties across the two classes
    far, tar, _ = roc_curve(scores, same)
    assert roc_auc(far, tar) == pytest.approx(roc_auc_score(same, scores), abs=1e-12)
    sk_far, sk_tar, _ = sk_roc_curve(same, scores, drop_intermediate=False)
    assert np.allclose(far, sk_far) and np.allclose(tar, sk_tar)


def test_tar_at_far_interpolates_linearly_and_takes_the_top_of_a_vertical_step():
    far = np.array([0.0, 0.0, 0.02, 0.04, 1.0])
    tar = np.array([0.0, 0.5, 0.7, 0.9, 1.0])
    assert tar_at_far(far, tar, 0.01) == pytest.approx(0.6)  # halfway between (0, 0.5) and (0.02, 0.7)
    assert tar_at_far(far, tar, 0.0) == 0.5
    assert tar_at_far(far, tar, 0.03) == pytest.approx(0.8)


def test_tar_at_far_is_left_out_when_too_few_impostor_pairs():
    same = np.array([True] * 50 + [False] * 150)
    scores = np.r_[np.linspace(0.5, 1, 50), np.linspace(0, 0.6, 150)]
    result = evaluate_verification(scores, same, fold_ids([Pair('a', 'b', bool(s), 1) for s in same]))
    assert result.tar_at[1e-2] is not None and result.tar_at[1e-3] is None
    assert 0 < result.auc < 1


def test_set_embedding_is_the_mean_of_normalised_embeddings():
    assert set_embedding([[3.0, 0.0], [0.0, 0.5]]) == pytest.approx([0.5, 0.5])


# ---------------------------------------------------------------------------------------------- pair lists

def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_lfw_pairs_both_line_kinds_and_header(tmp_path):
    pairs = read_pairs(write(tmp_path, 'pairs.txt', '10\t300\nAbel_Pacheco\t1\t4\nAbdel_Madi_Shabneh\t1\t'
                                                    'Dean_Barker\t1\n'))
    assert pairs.kind == 'lfw' and not pairs.sets
    assert pairs.pairs == (Pair('Abel_Pacheco/Abel_Pacheco_0001.jpg', 'Abel_Pacheco/Abel_Pacheco_0004.jpg', True, 2),
                           Pair('Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg', 'Dean_Barker/Dean_Barker_0001.jpg',
                                False, 3))


@pytest.mark.parametrize('line', ['Abel_Pacheco\t1', 'Abel_Pacheco\tone\t4', 'a\t1\tb\tc'])
def test_malformed_lfw_line_is_named_with_its_number(tmp_path, line):
    path = write(tmp_path, 'pairs.txt', f'Ann\t1\t2\nBob\t1\tCid\t1\n{line}\n')
    with pytest.raises(PairListError, match=r'pairs.txt, line 3: expected "name n1 n2"'):
        read_pairs(path)


def test_csv_pairs_with_folds_and_errors(tmp_path):
    pairs = read_pairs(write(tmp_path, 'p.csv', 'image_a,image_b,same,fold\na/1.png,a/2.png,1,0\n'
                                                'a/1.png,b/1,false,1\n'))
    assert pairs.kind == 'csv'
    assert [(p.first, p.second, p.same, p.line, p.fold) for p in pairs.pairs] == [
        ('a/1.png', 'a/2.png', True, 2, 0), ('a/1.png', 'b/1', False, 3, 1)]
    with pytest.raises(PairListError, match=r'line 3: "same" must be 1/0'):
        read_pairs(write(tmp_path, 'bad.csv', 'image_a,image_b,same\nx,y,1\nx,z,maybe\n'))
    with pytest.raises(PairListError, match=r'line 1: the CSV header must name .* missing same'):
        read_pairs(write(tmp_path, 'nohead.csv', 'image_a,image_b\nx,y\n'))
    with pytest.raises(PairListError, match='needs both kinds'):
        read_pairs(write(tmp_path, 'one.csv', 'image_a,image_b,same\nx,y,1\n'))


def test_ytf_splits_are_set_pairs_with_their_own_folds(tmp_path):
    pairs = read_pairs(write(tmp_path, 'splits.txt', 'split number, pair number, first name, second name, is same\n'
                                                     '1, 1, Ann/0, Ann/2, 1\n2, 2, Ann/0, Bob/1, 0\n'))
    assert pairs.sets and pairs.kind == 'ytf'
    assert [(p.first, p.second, p.same, p.fold) for p in pairs.pairs] == [('Ann/0', 'Ann/2', True, 1),
                                                                           ('Ann/0', 'Bob/1', False, 2)]
    keys = ['Ann/0/1', 'Ann/0/2', 'Ann/2/1', 'Bob/1/5']
    ann_0 = ('Ann/0/1', 'Ann/0/2')
    assert resolve_pairs(pairs, keys) == [(ann_0, ('Ann/2/1',)), (ann_0, ('Bob/1/5',))]


def test_references_resolve_by_path_or_flat_name_and_missing_images_name_the_line():
    pair_list = PairList('pairs.txt', 'lfw', (Pair('Ann/Ann_0001.jpg', 'Ann/Ann_0002.jpg', True, 2),
                                              Pair('Ann/Ann_0001.jpg', 'Bob/Bob_0001.jpg', False, 3)))
    assert resolve_pairs(pair_list, ['Ann/Ann_0001', 'Ann_0002', 'Bob_0001']) == [
        (('Ann/Ann_0001',), ('Ann_0002',)), (('Ann/Ann_0001',), ('Bob_0001',))]
    with pytest.raises(PairListError, match=r"pairs.txt, line 3: no image keyed 'Bob/Bob_0001'"):
        resolve_pairs(pair_list, ['Ann_0001', 'Ann_0002'])
