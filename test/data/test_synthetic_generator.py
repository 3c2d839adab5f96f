"""The synthetic scene generator: label consistency, void objects, anomalies, determinism, default size."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.data.synthetic import ANOMALY_KINDS, VOID_KINDS, render_frame, scene
from anomaly_seg_ros.data.synthetic.canvas import Canvas
from anomaly_seg_ros.labels import SYNTHETIC

SIZE = (256, 128)
INSTANCE_LABELS = {24, 26}


@pytest.fixture(scope='module')
def train_frames():
    return [render_frame(11, 'train', i, *SIZE) for i in range(6)]


@pytest.fixture(scope='module')
def anomaly_frames():
    return [render_frame(11, 'anomaly_test', i, *SIZE) for i in range(4)]


def test_frames_have_the_documented_shapes_and_dtypes(train_frames):
    frame = train_frames[0]
    assert frame.image.shape == (128, 256, 3) and frame.image.dtype == np.uint8
    assert frame.label_ids.shape == (128, 256) and frame.label_ids.dtype == np.uint8
    assert frame.instance_ids.dtype == np.int32 and frame.anomaly.dtype == np.uint8


def test_train_frames_only_use_synthetic_classes_and_void(train_frames):
    allowed = {raw for raw, train in SYNTHETIC.raw_to_train.items() if train != 255} | {5}
    for frame in train_frames:
        assert set(np.unique(frame.label_ids).tolist()) <= allowed


def test_every_instance_pixel_carries_its_class(train_frames):
    for frame in train_frames:
        inst, label = frame.instance_ids, frame.label_ids
        objects = inst >= 1000
        assert np.array_equal(inst[objects] // 1000, label[objects].astype(np.int32))
        assert np.array_equal(inst[~objects], label[~objects].astype(np.int32))
        # Only people and cars are instances, and every person/car pixel belongs to an instance.
        assert set(np.unique(label[objects]).tolist()) <= INSTANCE_LABELS
        assert objects[np.isin(label, list(INSTANCE_LABELS))].all()


def test_scenes_contain_cars_people_and_several_instances(train_frames):
    ids = np.concatenate([np.unique(f.instance_ids[f.instance_ids >= 1000]) for f in train_frames])
    assert (ids // 1000 == 26).sum() >= 6 and (ids // 1000 == 24).sum() >= 2


def test_void_objects_are_present_in_train_scenes(train_frames):
    with_void = [f for f in train_frames if (f.label_ids == 5).any()]
    assert len(with_void) >= len(train_frames) // 2
    assert all((f.anomaly != 1).all() for f in train_frames)         # no test anomalies in training


def test_anomaly_frames_label_anomaly_objects_1_and_void_objects_255(anomaly_frames):
    for frame in anomaly_frames:
        assert (frame.anomaly == 1).sum() >= 24
        assert np.array_equal(frame.anomaly == 255, frame.label_ids == 5)
        assert np.array_equal(frame.anomaly == 1, frame.label_ids == 0)  # anomaly pixels have no class
        assert set(np.unique(frame.anomaly).tolist()) <= {0, 1, 255}


def test_anomaly_kinds_are_never_used_as_void_objects():
    assert not set(ANOMALY_KINDS) & set(VOID_KINDS)
    assert len(ANOMALY_KINDS) >= 5 and len(VOID_KINDS) >= 3


def test_image_and_labels_are_drawn_together_pixel_for_pixel(monkeypatch):
    """Paint every sprite flat in a colour keyed by its label: the image must equal palette[label]."""
    palette = np.random.default_rng(0).integers(0, 256, (256, 3)).astype(np.float32)
    palette[250] = (255, 0, 255)                                      # anomaly objects
    original_paste = Canvas.paste

    def flat_paste(self, sprite, instance_id=0, anomaly=False):
        if sprite is not None:
            sprite.rgb[:] = palette[250] if anomaly else palette[sprite.label]
        return original_paste(self, sprite, instance_id, anomaly)

    monkeypatch.setattr(Canvas, 'paste', flat_paste)
    monkeypatch.setattr(Canvas, 'darken', lambda *args, **kwargs: None)
    monkeypatch.setattr(scene, '_camera_effects', lambda image, rng: np.clip(image, 0, 255).astype(np.uint8))
    for split, index in (('train', 0), ('train', 1), ('anomaly_test', 0), ('anomaly_test', 1)):
        frame = render_frame(3, split, index, *SIZE)
        expected = palette[np.where(frame.anomaly == 1, 250, frame.label_ids)].astype(np.uint8)
        assert np.array_equal(frame.image, expected), f'{split} {index}: image and labels disagree'


def test_same_seed_renders_identical_frames_and_another_seed_differs():
    a = render_frame(5, 'val', 2, *SIZE)
    b = render_frame(5, 'val', 2, *SIZE)
    c = render_frame(6, 'val', 2, *SIZE)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.image, c.image)


def test_frames_depend_on_split_and_index():
    base = render_frame(5, 'train', 0, *SIZE).image
    assert not np.array_equal(base, render_frame(5, 'train', 1, *SIZE).image)
    assert not np.array_equal(base, render_frame(5, 'val', 0, *SIZE).image)


def test_appearance_varies_between_frames(train_frames):
    means = np.array([f.image.reshape(-1, 3).mean(axis=0) for f in train_frames])
    assert means.std(axis=0).max() > 3.0
    assert all(f.image.std() > 20 for f in train_frames)              # textured, not flat


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match='unknown synthetic split'):
        render_frame(0, 'test', 0)


def test_frames_default_to_512x256_with_every_array_that_size():
    """The speed (>= 10 frames/s at this size on one core) is a figure, not a test: `anomaly_seg data synthetic`
    prints frames/s and frames per CPU second of its run."""
    frame = render_frame(0, 'train', 0)
    assert frame.image.shape == (256, 512, 3)
    assert frame.label_ids.shape == frame.instance_ids.shape == frame.anomaly.shape == (256, 512)
