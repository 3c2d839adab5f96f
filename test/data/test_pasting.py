"""Object bank and pasting (outlier exposure) on a bank and frames the test makes itself."""
from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly_seg_ros.data import open_dataset
from anomaly_seg_ros.data.objects import ObjectBank
from anomaly_seg_ros.data.pasting import (
    PasteSettings,
    paste_objects,
    pasted_anomaly_labels,
    surface_mask,
    write_pasted_set,
    write_sheet,
)
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.labels import CITYSCAPES, IGNORE_INDEX


def _road_frame(height: int = 128, width: int = 256, horizon: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A grey road below ``horizon`` rows under a blue sky; returns (image, Cityscapes train ids)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:horizon] = (90, 140, 220)
    image[horizon:] = (100, 100, 100)
    semantic = np.full((height, width), 10, np.uint8)  # sky
    semantic[horizon:] = 0  # road
    return image, semantic


def test_bank_splits_objects_by_category_and_leaves_potted_plants_out(object_bank_root):
    train = ObjectBank(object_bank_root, 'train')
    held_out = ObjectBank(object_bank_root, 'held_out')
    assert train.categories == ['chair', 'cup']
    assert held_out.categories == ['horse', 'teddy_bear']  # the manifest's spaces read as the folders' underscores
    assert 'potted_plant' not in train.categories + held_out.categories
    assert train.rgba(0).shape[2] == 4
    assert held_out.describe()['image_licences'] == {'Attribution License': 4}


def test_bank_without_manifest_names_what_is_expected(tmp_path):
    with pytest.raises(DatasetError, match='manifest.json'):
        ObjectBank(tmp_path, 'train')


def test_same_seed_pastes_the_same_frame_and_another_seed_another(object_bank_root):
    bank = ObjectBank(object_bank_root, 'train')
    image, semantic = _road_frame()
    surface = surface_mask(semantic, CITYSCAPES)
    first = paste_objects(image, surface, bank, np.random.default_rng(3))
    again = paste_objects(image, surface, bank, np.random.default_rng(3))
    other = paste_objects(image, surface, bank, np.random.default_rng(4))
    assert np.array_equal(first.image, again.image) and first.placements == again.placements
    assert not np.array_equal(first.image, other.image)
    assert not np.array_equal(first.image, image)


def test_objects_stand_on_the_road_and_shrink_towards_the_horizon(object_bank_root):
    bank = ObjectBank(object_bank_root, 'train')
    horizon = 48
    image, semantic = _road_frame(horizon=horizon)
    surface = surface_mask(semantic, CITYSCAPES)
    settings = PasteSettings(count=(3, 3), relative_height=(0.5, 0.5), min_height=0.0, max_height=1.0,
                             shadow_probability=0.0)
    placements = []
    for seed in range(8):
        result = paste_objects(image, surface, bank, np.random.default_rng(seed), settings)
        for p in result.placements:
            assert surface[p.y, p.x], 'the base of an object stands on the road'
            assert result.anomaly[max(p.y - 2, 0):p.y + 1, max(p.x - 2, 0):p.x + 3].any()  # drawn at its base
        placements += result.placements
    for p in placements:  # flat-road perspective: height = relative height x rows below the horizon
        assert abs(p.height - 0.5 * (p.y - horizon)) <= 1.5
    near, far = max(placements, key=lambda p: p.y), min(placements, key=lambda p: p.y)
    assert near.height > far.height


def test_smallest_objects_are_a_few_pixels_high(object_bank_root):
    bank = ObjectBank(object_bank_root, 'train')
    image, semantic = _road_frame(height=256, width=512, horizon=100)
    settings = PasteSettings(relative_height=(0.01, 0.01), min_height=0.02)
    result = paste_objects(image, surface_mask(semantic, CITYSCAPES), bank, np.random.default_rng(0), settings)
    assert result.placements and all(p.height == round(0.02 * 256) for p in result.placements)
    assert 0 < result.anomaly.sum() < 200


def test_a_frame_without_road_gets_its_objects_in_its_lower_half(object_bank_root):
    bank = ObjectBank(object_bank_root, 'train')
    image, _ = _road_frame()
    result = paste_objects(image, np.zeros(image.shape[:2], bool), bank, np.random.default_rng(1))
    assert result.placements and all(p.y >= image.shape[0] // 2 for p in result.placements)


def test_labels_mark_objects_ignore_feathered_edges_and_follow_the_void_policy(object_bank_root):
    bank = ObjectBank(object_bank_root, 'train')
    image, semantic = _road_frame()
    result = paste_objects(image, surface_mask(semantic, CITYSCAPES), bank, np.random.default_rng(2),
                           PasteSettings(min_height=0.2))
    void = np.zeros(semantic.shape, bool)
    void[:4] = True  # a void band at the top, away from the road
    ignored = pasted_anomaly_labels(result, void, 'ignore')
    as_anomaly = pasted_anomaly_labels(result, void, 'anomaly')
    assert np.array_equal(ignored == 1, result.anomaly)
    assert (ignored[:4] == IGNORE_INDEX).all() and (as_anomaly[:4] == 1).all()
    assert (ignored[result.uncertain] == IGNORE_INDEX).all() and result.uncertain.any()
    assert set(np.unique(ignored)) <= {0, 1, IGNORE_INDEX}
    with pytest.raises(ValueError, match='void policy'):
        pasted_anomaly_labels(result, void, 'border')


def test_a_written_set_reads_back_as_a_folder_anomaly_set_with_the_same_bytes_every_time(object_bank_root, tmp_path):
    from anomaly_seg_ros.data.synthetic import write_dataset
    root = tmp_path / 'synthetic'
    write_dataset(root, {'train': 0, 'val': 3, 'anomaly_test': 0}, size=(128, 64), seed=0, progress=False)
    dataset = open_dataset('synthetic', root, 'val')
    bank = ObjectBank(object_bank_root, 'held_out')
    first = write_pasted_set(dataset, bank, tmp_path / 'a', seed=7)
    second = write_pasted_set(dataset, bank, tmp_path / 'b', seed=7)
    folder = open_dataset('folder', first)
    assert len(folder) == 3
    anomalies = 0
    for i in range(3):
        sample = folder[i]
        assert sample.image.shape == dataset[i].image.shape
        anomalies += int((sample.anomaly == 1).sum())
        for part in ('images', 'labels'):
            name = f'{sample.name}.png'
            assert (first / part / name).read_bytes() == (second / part / name).read_bytes()
    assert anomalies > 0
    description = json.loads((first / 'pasted.json').read_text())
    assert description['objects']['categories'] == ['horse', 'teddy_bear'] and description['seed'] == 7
    assert write_sheet(first, 3).is_file()
