"""Face verification on (super-resolved) faces: pair lists, 10-fold accuracy, ROC, AUC and TAR at fixed FARs.

SFMNet's paper reports, next to identity similarity, how well a recognition network tells same-person from
different-person pairs when it sees SR faces (LFW, YTF). This module holds the protocol's arithmetic and the pair
lists; :mod:`sfmnet_plugin.benchmark` embeds the faces and calls it.

**Pair lists** (:func:`read_pairs`), recognised by their first line:

* LFW's ``pairs.txt``: an optional header of one or two integers (``10 300``: 10 folds of 300 same and 300
  different pairs), then ``name n1 n2`` (same person) and ``name1 n1 name2 n2`` (different people) lines, tab- or
  space-separated. Image ``name n`` is ``name/name_000n.jpg`` under the HR root; it is found by its key
  ``name/name_000n`` or, in a flat folder of aligned crops, ``name_000n``.
* A CSV with the header ``image_a,image_b,same`` (``same``: 1/0, true/false, yes/no) and optionally a ``fold``
  column; images are named by their key or file name relative to the HR root.
* YouTube Faces' ``splits.txt`` (header starting ``split number``; rows ``split, pair, first, second, same, ...``):
  set-to-set pairs whose sides are videos (``name/video``), i.e. every image keyed ``name/video/...`` (frames of
  one folder, e.g. an LMDB written from the frame folders). A side's embedding is the mean of its frames'
  L2-normalised embeddings.

**Folds.** A pair list's own folds (YTF's split numbers, a CSV's ``fold`` column); otherwise the pairs are cut in
file order into 10 contiguous folds, which for LFW's ``pairs.txt`` (6,000 pairs) are its official folds of 600.
When the count is not a multiple of 10 the folds differ in size by at most one pair (``numpy.array_split``).

**10-fold accuracy** (:func:`ten_fold_accuracy`, LFW's "unrestricted" protocol as the papers run it, with 10 folds
or a list's own number): for each fold, the threshold is chosen on the other folds to maximise their accuracy, and
the accuracy at that threshold is measured on the held-out fold; the result is the mean and the standard deviation
(``numpy.std``, ddof 0, as insightface's and facenet's verification code report it) over the folds, and the
standard error of the mean (LFW's README: sample standard deviation / sqrt(folds)). A pair is called "same" when
its score (cosine similarity: higher = more alike) is strictly above the threshold. The candidate thresholds are
-inf and the midpoints between consecutive distinct training scores and +inf, so tied scores always get the same
call; when several candidates reach the highest training accuracy, the lowest is taken.

**ROC and AUC** (:func:`roc_curve`) use all pairs together: one point per distinct score (ties move TAR and FAR
at once), AUC by the trapezoidal rule, which equals the probability that a same-person pair scores above a
different-person pair, ties counted one half (``sklearn.metrics.roc_auc_score``).

**TAR at FAR f** (:func:`tar_at_far`) is read off the ROC curve by linear interpolation between its two
neighbouring points: the true-accept rate of a (randomised) threshold whose false-accept rate is exactly ``f``.
Where the ROC curve has a vertical step at ``f`` the highest TAR of that step is taken. It is reported only when
there are at least ``1/f`` different-person pairs (otherwise a single impostor moves FAR by more than ``f``).
"""
import csv
import math
import re
from dataclasses import dataclass

import numpy as np

DEFAULT_FOLDS = 10
DEFAULT_FARS = (1e-2, 1e-3)
_TRUE, _FALSE = ('1', 'true', 'yes', 'same'), ('0', 'false', 'no', 'different')
_INTEGER = re.compile(r'^\d+$')


class PairListError(ValueError):
    """A pair list that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Pair:
    """One verification pair: each side is one image reference or one set (a video's frames), ``same`` its label.

    ``first`` and ``second`` are references as the list writes them (resolved to image keys by
    :func:`resolve_pairs`); ``line`` is the 1-based line number in the pair list; ``fold`` the list's own fold.
    """

    first: str
    second: str
    same: bool
    line: int
    fold: int | None = None


@dataclass(frozen=True)
class PairList:
    """The parsed pairs; ``sets`` is True for set-to-set lists (YTF), whose sides are folders of frames."""

    path: str
    kind: str
    pairs: tuple
    sets: bool = False


def _label(text, path, line):
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PairListError(f'{path}, line {line}: "same" must be 1/0 (or true/false, yes/no), got {text.strip()!r}.')


def lfw_image(name, number):
    """LFW's file naming: image ``number`` of ``name`` is ``name/name_000n.jpg``."""
    return f'{name}/{name}_{int(number):04d}.jpg'


def _read_lfw(path, lines):
    pairs = []
    for number, text in lines:
        fields = text.split()
        if len(fields) == 3 and _INTEGER.match(fields[1]) and _INTEGER.match(fields[2]):
            pairs.append(Pair(lfw_image(fields[0], fields[1]), lfw_image(fields[0], fields[2]), True, number))
        elif len(fields) == 4 and _INTEGER.match(fields[1]) and _INTEGER.match(fields[3]):
            pairs.append(Pair(lfw_image(fields[0], fields[1]), lfw_image(fields[2], fields[3]), False, number))
        else:
            raise PairListError(f'{path}, line {number}: expected "name n1 n2" (same person) or "name1 n1 name2 n2" '
                                f'(different people), got {text.strip()!r}.')
    return PairList(path, 'lfw', tuple(pairs))


def _csv_rows(path, lines):
    rows = csv.reader(text for _, text in lines)
    return [(number, [field.strip() for field in row]) for (number, _), row in zip(lines, rows)]


def _fold(text, path, line):
    if not _INTEGER.match(text):
        raise PairListError(f'{path}, line {line}: the fold must be a non-negative integer, got {text!r}.')
    return int(text)


def _read_csv(path, lines):
    (_, header), *rows = _csv_rows(path, lines)
    header = [name.lower() for name in header]
    missing = [name for name in ('image_a', 'image_b', 'same') if name not in header]
    if missing:
        raise PairListError(f'{path}, line {lines[0][0]}: the CSV header must name image_a, image_b and same '
                            f'(optionally fold); missing {", ".join(missing)}.')
    column = {name: header.index(name) for name in header}
    pairs = []
    for number, row in rows:
        if len(row) != len(header) or not row[column['image_a']] or not row[column['image_b']]:
            raise PairListError(f'{path}, line {number}: expected {len(header)} fields ({",".join(header)}) with '
                                f'both images named, got {",".join(row)!r}.')
        fold = _fold(row[column['fold']], path, number) if 'fold' in column else None
        pairs.append(Pair(row[column['image_a']], row[column['image_b']],
                          _label(row[column['same']], path, number), number, fold))
    return PairList(path, 'csv', tuple(pairs))


def _read_ytf(path, lines):
    pairs = []
    for number, row in _csv_rows(path, lines)[1:]:
        if len(row) < 5 or not row[2] or not row[3]:
            raise PairListError(f'{path}, line {number}: expected "split, pair, first video, second video, same, ..."'
                                f', got {",".join(row)!r}.')
        pairs.append(Pair(row[2].strip('/'), row[3].strip('/'), _label(row[4], path, number), number,
                          _fold(row[0], path, number)))
    return PairList(path, 'ytf', tuple(pairs), sets=True)


def read_pairs(path):
    """Parse a pair list (LFW ``pairs.txt``, a CSV, or YTF ``splits.txt``; see the module docstring)."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            lines = [(number, text.rstrip('\r\n')) for number, text in enumerate(f, 1) if text.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise PairListError(f'cannot read the pair list {path}: {error}') from error
    if not lines:
        raise PairListError(f'{path} holds no pairs.')
    first = lines[0][1].strip().lower()
    if first.startswith('split number'):
        pair_list = _read_ytf(path, lines)
    elif 'image_a' in first and ',' in first:
        pair_list = _read_csv(path, lines)
    else:
        header = first.split()
        if 1 <= len(header) <= 2 and all(_INTEGER.match(field) for field in header):
            lines = lines[1:]  # LFW's "folds pairs-per-fold" header
        pair_list = _read_lfw(path, lines)
    if not pair_list.pairs:
        raise PairListError(f'{path} holds no pairs.')
    if len({pair.same for pair in pair_list.pairs}) < 2:
        raise PairListError(f'{path}: all pairs are {"same" if pair_list.pairs[0].same else "different"}-person '
                            'pairs; verification needs both kinds.')
    return pair_list


def _strip_extension(reference):
    stem, dot, extension = reference.rpartition('.')
    return stem if dot and '/' not in extension else reference


def resolve_pairs(pair_list, keys):
    """``[(first keys, second keys)]`` per pair: the test set's image keys each side stands for.

    An image reference is found as its path without extension (``name/name_0001``) or, for flat folders, its file
    name without extension (``name_0001``); a set (YTF video) is every key below it (``name/video/...``). A
    reference that matches nothing is an error naming the list's line.
    """
    keys = list(keys)
    available = set(keys)
    below = {}  # folder -> the keys anywhere below it, for set sides
    if pair_list.sets:
        for key in keys:
            parts = key.split('/')
            for depth in range(1, len(parts)):
                below.setdefault('/'.join(parts[:depth]), []).append(key)
    sides = []
    for pair in pair_list.pairs:
        resolved = []
        for reference in (pair.first, pair.second):
            if pair_list.sets:
                found = tuple(below.get(reference, ()))
            else:
                stem = _strip_extension(reference)
                found = next(((candidate,) for candidate in (stem, stem.rsplit('/', 1)[-1]) if candidate in available),
                             ())
            if not found:
                what = 'no frames keyed' if pair_list.sets else 'no image keyed'
                target = f'{reference}/...' if pair_list.sets else _strip_extension(reference)
                raise PairListError(f'{pair_list.path}, line {pair.line}: {what} {target!r} in the test set.')
            resolved.append(found)
        sides.append(tuple(resolved))
    return sides


def fold_ids(pairs, folds=DEFAULT_FOLDS):
    """Fold number per pair: the list's own folds where every pair has one, else ``folds`` contiguous folds."""
    if all(pair.fold is not None for pair in pairs):
        return np.array([pair.fold for pair in pairs])
    ids = np.empty(len(pairs), dtype=int)
    for fold, indices in enumerate(np.array_split(np.arange(len(pairs)), folds)):
        ids[indices] = fold
    return ids


def set_embedding(embeddings):
    """The mean of L2-normalised embeddings (one image: itself, normalised): a set's (video's) embedding."""
    embeddings = np.asarray(embeddings, np.float64).reshape(len(embeddings), -1)
    return (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).mean(0)


def _candidate_thresholds(scores):
    distinct = np.unique(scores)
    return np.concatenate([[-np.inf], (distinct[:-1] + distinct[1:]) / 2, [np.inf]])


def best_threshold(scores, same):
    """The threshold that maximises the accuracy of "same if score > threshold" on these pairs (lowest if tied)."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    thresholds = _candidate_thresholds(scores)
    # correct(t) = #same above t + #different at or below t, for every candidate at once via sorted counts
    sorted_same, sorted_different = np.sort(scores[same]), np.sort(scores[~same])
    same_above = len(sorted_same) - np.searchsorted(sorted_same, thresholds, side='right')
    different_at_or_below = np.searchsorted(sorted_different, thresholds, side='right')
    return float(thresholds[int(np.argmax(same_above + different_at_or_below))])


def accuracy_at(scores, same, threshold):
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    return float(np.mean((scores > threshold) == same))


@dataclass(frozen=True)
class FoldAccuracy:
    """10-fold verification accuracy: per-fold thresholds and accuracies, their mean, std and standard error."""

    mean: float
    std: float
    standard_error: float
    accuracies: tuple
    thresholds: tuple


def ten_fold_accuracy(scores, same, folds):
    """Held-out accuracy per fold with the threshold chosen on the other folds (see the module docstring).

    Args:
        scores (array): one similarity per pair (higher = more alike).
        same (array): True for same-person pairs.
        folds (array): fold id per pair (e.g. from :func:`fold_ids`); at least two folds.
    """
    scores, same, folds = np.asarray(scores, np.float64), np.asarray(same, bool), np.asarray(folds)
    fold_names = list(dict.fromkeys(folds.tolist()))
    if len(fold_names) < 2:
        raise ValueError('ten_fold_accuracy needs at least two folds.')
    accuracies, thresholds = [], []
    for fold in fold_names:
        held_out = folds == fold
        threshold = best_threshold(scores[~held_out], same[~held_out])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[held_out], same[held_out], threshold))
    accuracies = np.array(accuracies)
    return FoldAccuracy(float(accuracies.mean()), float(accuracies.std()),
                        float(accuracies.std(ddof=1) / math.sqrt(len(accuracies))), tuple(accuracies.tolist()),
                        tuple(thresholds))


def roc_curve(scores, same):
    """``(far, tar, thresholds)``: the ROC curve from (0, 0) to (1, 1), one point per distinct score.

    Point ``i`` accepts the pairs scoring at or above ``thresholds[i]`` (the first point, threshold +inf, accepts
    none).
    """
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    if same.all() or not same.any():
        raise ValueError('roc_curve needs both same-person and different-person pairs.')
    order = np.argsort(-scores, kind='stable')
    scores, same = scores[order], same[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_accepts = np.cumsum(same)[last_of_each_score]
    false_accepts = np.cumsum(~same)[last_of_each_score]
    tar = np.r_[0.0, true_accepts / same.sum()]
    far = np.r_[0.0, false_accepts / (~same).sum()]
    return far, tar, np.r_[np.inf, scores[last_of_each_score]]


def roc_auc(far, tar):
    """Area under the ROC curve (trapezoidal rule)."""
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def tar_at_far(far, tar, target_far):
    """TAR at ``target_far`` by linear interpolation on the ROC curve (highest TAR of a vertical step at it)."""
    far, tar = np.asarray(far), np.asarray(tar)
    distinct_far = np.unique(far)
    highest_tar = np.array([tar[far == value].max() for value in distinct_far])
    return float(np.interp(target_far, distinct_far, highest_tar))


def far_resolvable(different_pairs, target_far):
    """Whether ``different_pairs`` impostor pairs can measure FAR ``target_far`` (at least ``1/target_far``)."""
    return different_pairs * target_far >= 1 - 1e-9


@dataclass(frozen=True)
class VerificationResult:
    """Everything the benchmark reports for one method: 10-fold accuracy, ROC (curve and AUC), TAR at FARs."""

    accuracy: FoldAccuracy
    auc: float
    far: np.ndarray
    tar: np.ndarray
    tar_at: dict  # FAR -> TAR, None where the impostor count cannot resolve it


def evaluate_verification(scores, same, folds, fars=DEFAULT_FARS):
    """10-fold accuracy, ROC, AUC and TAR at ``fars`` of one method's pair scores."""
    same = np.asarray(same, bool)
    far, tar, _ = roc_curve(scores, same)
    different = int((~same).sum())
    tar_at = {target: tar_at_far(far, tar, target) if far_resolvable(different, target) else None for target in fars}
    return VerificationResult(ten_fold_accuracy(scores, same, folds), roc_auc(far, tar), far, tar, tar_at)
