"""Source C of the data generator (objects pasted on the road) through a tiny `train all`, as the default
model's command runs it: training-category objects in the training samples, held-out ones in the written
validation set, on which the ensemble is then chosen."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from anomaly_seg_ros.labels import IGNORE_INDEX
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.training import generate_batch, train_all
from anomaly_seg_ros.training.data_generator import PastedObjects
from anomaly_seg_ros.training.frames import Frame
from anomaly_seg_ros.training.generated_set import GeneratedSet

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def pasted_run(tmp_path_factory, tiny_dataset, object_bank_root):
    from anomaly_seg_ros.training import load_train_config
    from test.training.conftest import _tiny_sets
    sets = _tiny_sets(1)
    sets['data'] = {'dataset': 'synthetic', 'root': str(tiny_dataset)}
    sets['dissimilarity'].update(epochs=2, checkpoint='best', generator={
        'sources': ['A', 'C'], 'void': 'ignore', 'objects': str(object_bank_root)})
    config = load_train_config('light', sets=sets)
    root = tmp_path_factory.mktemp('pasted_run')
    train_all(config, root / 'model', root / 'work', show_progress=False, log=lambda _: None)
    return root


def _generated(root, split: str, source: str) -> GeneratedSet:
    folders = sorted((root / 'generated').glob(f'{split}_{source}_*'))
    assert len(folders) == 1, folders
    return GeneratedSet.open(folders[0])


def test_training_samples_hold_pasted_training_objects_and_validation_the_held_out_set(pasted_run):
    validation = pasted_run / 'work' / 'validation_objects'
    described = json.loads((validation / 'pasted.json').read_text())
    assert described['objects']['categories'] == ['horse', 'teddy_bear']
    assert described['void_policy'] == 'ignore'
    train_c = _generated(pasted_run / 'work', 'train', 'C')
    assert train_c.meta['description']['pasted']['part'] == 'train'
    assert train_c.meta['pixels']['anomaly'] > 0
    val_c = _generated(pasted_run / 'work', 'val', 'C')
    assert val_c.meta['count'] == len(list((validation / 'images').glob('*.png')))
    assert val_c.meta['pixels']['anomaly'] > 0
    record = load_model_config(pasted_run / 'model').provenance['stages']['dissimilarity']
    assert record['objects']['train']['categories'] == ['chair', 'cup'] and record['void'] == 'ignore'


def test_validation_is_the_held_out_set_alone_and_the_kept_epoch_has_its_best_ap(pasted_run):
    work = pasted_run / 'work'
    assert not list((work / 'generated').glob('val_A_*')), 'source A is not generated for validation with C'
    with open(work / 'dissimilarity' / 'metrics.csv') as handle:
        rows = list(csv.DictReader(handle))
    aps = [float(r['val_ap']) for r in rows]
    record = load_model_config(pasted_run / 'model').provenance['stages']['dissimilarity']
    last_best = len(aps) - int(np.argmax(aps[::-1]))  # ties go to the later epoch
    assert record['checkpoint'] == 'best' and record['selected_epoch'] == last_best
    assert record['validation']['val_ap'] == pytest.approx(max(aps), rel=1e-5)  # the CSV rounds


def test_the_ensemble_is_chosen_on_the_held_out_objects(pasted_run):
    data = load_model_config(pasted_run / 'model').provenance['data']
    assert data['ensemble_validation'] == {'dataset': 'folder', 'split': None,
                                           'root': str(pasted_run / 'work' / 'validation_objects')}


def test_source_c_segments_the_pasted_frame_and_labels_its_objects(object_bank_root):
    """The modules see the pasted image (not the original), the void is ignored, the objects are anomalies."""
    from anomaly_seg_ros.data.objects import ObjectBank
    from anomaly_seg_ros.data.pasting import PasteSettings
    from anomaly_seg_ros.labels import CITYSCAPES
    seen = []

    def segmentation(image):
        seen.append(image.clone())
        n, _, h, w = image.shape
        return torch.zeros(n, h, w, dtype=torch.int64), torch.zeros(n, 1, h, w), torch.zeros(n, 1, h, w)

    modules = {'segmentation': segmentation,
               'synthesis': lambda semantic: (torch.full((semantic.shape[0], 3, 32, 64), 0.5),),
               'perceptual': lambda image, synthesis: (torch.zeros(image.shape[0], 1, 32, 64),)}
    image = np.full((64, 128, 3), 100, np.uint8)
    semantic = np.zeros((64, 128), np.uint8)  # road everywhere
    semantic[:16] = 10
    void = np.zeros((64, 128), bool)
    void[:2] = True
    frame = Frame('f', image, semantic, None, void)
    pasted = PastedObjects(ObjectBank(object_bank_root, 'train'), PasteSettings(min_height=0.3))
    batch = generate_batch([frame], 'C', modules, CITYSCAPES, (32, 64), torch.device('cpu'),
                           [np.random.default_rng(0)], pasted=pasted, void_policy='ignore')
    assert not torch.equal(seen[0][0], torch.from_numpy(image.transpose(2, 0, 1)).float() / 255)
    labels = batch.labels[0]
    assert (labels == 1).any() and (labels[0] == IGNORE_INDEX).all()
    # A frame that carries its anomaly labels (the written validation set) is used as it is.
    given = np.zeros((64, 128), np.uint8)
    given[40:50, 60:70] = 1
    kept = generate_batch([frame._replace(anomaly=given)], 'C', modules, CITYSCAPES, (32, 64), torch.device('cpu'),
                          [np.random.default_rng(0)], pasted=pasted, void_policy='ignore')
    assert torch.equal(seen[-1][0], torch.from_numpy(image.transpose(2, 0, 1)).float() / 255)
    assert (kept.labels[0] == 1).sum() == 25
