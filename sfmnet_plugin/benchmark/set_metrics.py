"""The benchmark's set-level metrics: face verification on the SR faces, and FID. Both need every image first.

Verification (``pairs``): every face the pair list names is embedded by the recognizer, for each method's SR face
and for the HR face (the upper bound), aligned by the HR's landmarks as the identity similarity does
(:func:`~sfmnet_plugin.metrics.face_identity_metric.identity_embedding`); a pair's score is the cosine similarity
of its two sides' embeddings (a set's embedding is the mean of its frames' normalised embeddings). Faces in which
dlib's detector finds no face in the HR crop are still embedded (with the fallback box, see
:mod:`sfmnet_plugin.metrics.face_models`) and counted in the table's notes, never dropped.

FID (metric ``fid``): each method's SR faces against a reference set (default: the test set's HR faces).
"""
from dataclasses import dataclass

import numpy as np

from sfmnet_plugin.benchmark.columns import Column
from sfmnet_plugin.benchmark.errors import BenchmarkError
from sfmnet_plugin.metrics.face_identity_metric import cosine_similarity, identity_embedding
from sfmnet_plugin.metrics.face_models import detected_face_box, dlib_models
from sfmnet_plugin.metrics.fid import FidError, FidScorer
from sfmnet_plugin.metrics.verification import (
    DEFAULT_FARS,
    DEFAULT_FOLDS,
    PairListError,
    evaluate_verification,
    far_resolvable,
    fold_ids,
    read_pairs,
    resolve_pairs,
    set_embedding,
)

HR_ROW = 'HR'
RECOGNIZERS = ('dlib', 'arcface')


def _far_name(far):
    return f'{far:.0e}'.replace('e-0', 'e-')


MIN_PAIRS_PER_FOLD = 2  # a held-out fold of one pair has an accuracy of 0 or 1 by construction


def _check_folds(path, pairs, folds):
    """Refuse, before any face is scored, folds that cannot give an accuracy: fewer than two, fewer pairs than the
    folds they are cut into, a fold of fewer than :data:`MIN_PAIRS_PER_FOLD` pairs, or a list without both
    same-person and different-person pairs."""
    same = np.array([pair.same for pair in pairs], bool)
    if same.all() or not same.any():
        raise BenchmarkError(f'pairs: {path}: all {len(pairs)} pairs are {"same" if same.all() else "different"}-'
                             'person pairs; verification needs both kinds.')
    own_folds = all(pair.fold is not None for pair in pairs)
    if not own_folds and len(pairs) < DEFAULT_FOLDS * MIN_PAIRS_PER_FOLD:
        raise BenchmarkError(f'pairs: {path}: {len(pairs)} pairs cannot be cut into {DEFAULT_FOLDS} folds of at '
                             f'least {MIN_PAIRS_PER_FOLD}; give at least {DEFAULT_FOLDS * MIN_PAIRS_PER_FOLD} pairs or '
                             'a fold column (CSV) with fewer folds.')
    sizes = {name: int((folds == name).sum()) for name in dict.fromkeys(folds.tolist())}
    if len(sizes) < 2:
        raise BenchmarkError(f'pairs: {path}: all {len(pairs)} pairs are in one fold; the held-out accuracy needs at '
                             'least two folds.')
    small = {name: size for name, size in sizes.items() if size < MIN_PAIRS_PER_FOLD}
    if small:
        raise BenchmarkError(f'pairs: {path}: fold(s) {", ".join(map(str, small))} hold fewer than '
                             f'{MIN_PAIRS_PER_FOLD} pairs; give more pairs per fold or fewer folds.')


@dataclass
class VerificationRun:
    """Pairs, their folds and the embeddings collected so far (``embeddings[method][key]``, ``HR`` included)."""

    pair_list: object
    sides: list
    folds: np.ndarray
    backend: str
    onnx_path: str
    needed: set
    embeddings: dict
    undetected: set

    @classmethod
    def prepare(cls, pairs_path, keys, recognizer='dlib', arcface_onnx=None):
        """Parse and resolve the pair list and load the recognizer: every user error before any work."""
        if recognizer not in RECOGNIZERS:
            raise BenchmarkError(f'unknown recognizer {recognizer!r}; choose one of {RECOGNIZERS}.')
        if recognizer == 'arcface' and not arcface_onnx:
            raise BenchmarkError('recognizer arcface needs the ArcFace ONNX file (arcface_onnx / --arcface-onnx).')
        try:
            pair_list = read_pairs(pairs_path)
            sides = resolve_pairs(pair_list, keys)
        except PairListError as error:
            raise BenchmarkError(f'pairs: {error}') from error
        folds = fold_ids(pair_list.pairs)
        _check_folds(pairs_path, pair_list.pairs, folds)
        backend = 'dlib' if recognizer == 'dlib' else 'onnx'
        try:
            probe = np.full((128, 128, 3), 128, np.uint8)
            dlib_models()
            identity_embedding(probe, probe, backend, arcface_onnx)
        except (ImportError, ValueError) as error:
            raise BenchmarkError(f'verification cannot run: {error}') from error
        needed = {key for pair_sides in sides for side in pair_sides for key in side}
        return cls(pair_list, sides, folds, backend, arcface_onnx, needed, {}, set())

    def columns(self):
        different = sum(not pair.same for pair in self.pair_list.pairs)
        folds = len(set(np.asarray(self.folds).tolist()))  # the list's own folds, or the 10 contiguous ones
        columns = [Column('verification_accuracy', f'Verif. acc. ({folds}-fold)', {}, True, 4, per_image=False),
                   Column('verification_auc', 'AUC', {}, True, 4, per_image=False)]
        columns += [Column(f'tar_at_far_{_far_name(far)}', f'TAR@FAR={_far_name(far)}', {}, True, 4, per_image=False)
                    for far in DEFAULT_FARS if far_resolvable(different, far)]
        return columns

    def add(self, method, key, rgb, hr_rgb):
        """Embed ``rgb`` (an SR face of ``method``, or the HR with method ``HR``) if the pairs need it."""
        if key not in self.needed:
            return
        if method == HR_ROW and detected_face_box(hr_rgb) is None:
            self.undetected.add(key)
        self.embeddings.setdefault(method, {})[key] = identity_embedding(rgb, hr_rgb, self.backend, self.onnx_path)

    def scores(self, method):
        embeddings = self.embeddings[method]
        side = {}  # a side's embedding, once per side
        scores = []
        for first, second in self.sides:
            for keys in (first, second):
                if keys not in side:
                    side[keys] = set_embedding([embeddings[key] for key in keys])
            scores.append(cosine_similarity(side[first], side[second]))
        return np.array(scores)

    def evaluate(self, methods):
        """``(values, spreads, curves, scores)`` per method and for the HR row."""
        same = np.array([pair.same for pair in self.pair_list.pairs])
        values, spreads, curves, scores = {}, {}, {}, {}
        for method in [*methods, HR_ROW]:
            scores[method] = self.scores(method)
            result = evaluate_verification(scores[method], same, self.folds)
            values[method] = {'verification_accuracy': result.accuracy.mean, 'verification_auc': result.auc,
                              **{f'tar_at_far_{_far_name(far)}': tar for far, tar in result.tar_at.items()
                                 if tar is not None}}
            spreads[method] = {'verification_accuracy': result.accuracy.std}
            curves[method] = (result.far, result.tar, result.auc)
        return values, spreads, curves, scores

    def pair_rows(self, scores):
        """Rows of ``pair_scores.csv``: the pair (line, sides, label, fold) and every method's score."""
        rows = []
        for index, (pair, fold) in enumerate(zip(self.pair_list.pairs, self.folds)):
            rows.append({'line': pair.line, 'first': pair.first, 'second': pair.second, 'same': int(pair.same),
                         'fold': int(fold), **{method: float(values[index]) for method, values in scores.items()}})
        return rows

    def notes(self, values, spreads):
        pairs = self.pair_list.pairs
        same = sum(pair.same for pair in pairs)
        hr = values[HR_ROW]
        folds = len(set(self.folds.tolist()))
        text = (f'Verification: {len(pairs)} pairs ({same} same, {len(pairs) - same} different) of '
                f'{self.pair_list.path} in {folds} folds; recognizer '
                f'{"dlib ResNet-128" if self.backend == "dlib" else f"ArcFace ONNX {self.onnx_path}"}, faces aligned '
                'by the HR landmarks, cosine similarity; accuracy: threshold chosen on the other folds, mean ± std '
                f'over folds. HR faces (upper bound): accuracy {hr["verification_accuracy"]:.4f} ± '
                f'{spreads[HR_ROW]["verification_accuracy"]:.4f}, AUC {hr["verification_auc"]:.4f}.')
        lines = [text]
        if self.undetected:
            lines.append(f'Verification: dlib found no face in {len(self.undetected)} of {len(self.needed)} HR faces '
                         f'(kept, aligned with the fallback box): {", ".join(sorted(self.undetected)[:5])}'
                         f'{", ..." if len(self.undetected) > 5 else ""}.')
        return lines


def prepare_fid(reference, gt_root, weights_path, device, random_weights_for_tests=False):
    """A :class:`FidScorer` against ``reference`` (default: the HR images), or a BenchmarkError saying why not."""
    try:
        return FidScorer(reference or gt_root, weights_path, device, random_weights_for_tests, '--fid-weights')
    except (FileNotFoundError, FidError) as error:
        raise BenchmarkError(f'metric fid cannot run: {error}') from error

