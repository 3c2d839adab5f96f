"""Host-side frame preparation and the pictures made of outputs."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.imaging import prepare_image, resize_map, to_uint8_rgb
from anomaly_seg_ros.labels import CITYSCAPES, IGNORE_INDEX
from anomaly_seg_ros.visualization import colorize_heatmap, colorize_labels, contact_sheet, overlay


def test_prepare_image_gives_nchw_float_in_unit_range_at_the_requested_size():
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 255
    tensor = prepare_image(rgb, (12, 16))
    assert tensor.shape == (1, 3, 12, 16) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, 0], 1.0)
    np.testing.assert_allclose(tensor[0, 1:], 0.0)


def test_prepare_image_without_resize_is_exact():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(prepare_image(rgb, (8, 8))[0].transpose(1, 2, 0) * 255, rgb, atol=1e-4)
    np.testing.assert_array_equal(to_uint8_rgb(prepare_image(rgb, (8, 8))[0]), rgb)


def test_nearest_resize_of_labels_only_produces_existing_labels():
    labels = np.random.default_rng(0).integers(0, 5, (13, 17)).astype(np.uint8)
    assert set(np.unique(resize_map(labels, (50, 31), nearest=True))) <= set(np.unique(labels))


def test_heatmap_endpoints_follow_the_colormap_and_saturate_outside_the_range():
    values = np.array([[-1.0, 0.0, 1.0, 2.0]], np.float32)
    colored = colorize_heatmap(values, 'gray')
    np.testing.assert_array_equal(colored[0, :, 0], [0, 0, 255, 255])
    turbo = colorize_heatmap(values, 'turbo', value_range=(0.0, 2.0))
    assert turbo.shape == (1, 4, 3) and turbo.dtype == np.uint8
    assert not np.array_equal(turbo[0, 1], turbo[0, 3])


def test_label_colors_are_the_label_sets_colors_and_ignore_is_black():
    ids = np.random.default_rng(0).integers(0, CITYSCAPES.num_classes, (37, 53)).astype(np.uint8)
    ids[::5, ::3] = IGNORE_INDEX
    colored = colorize_labels(ids, CITYSCAPES)
    assert colored.shape == (37, 53, 3) and colored.dtype == np.uint8
    for train_id in (0, 13, CITYSCAPES.num_classes - 1):
        assert (colored[ids == train_id] == CITYSCAPES.colors[train_id]).all()
    assert not colored[ids == IGNORE_INDEX].any()
    # a batch of maps (not the table-lookup path) gives the same pixels
    np.testing.assert_array_equal(colorize_labels(np.stack([ids, ids]), CITYSCAPES)[1], colored)


def test_unknown_colormap_and_empty_range_are_refused():
    with pytest.raises(ValueError, match='unknown colormap'):
        colorize_heatmap(np.zeros((2, 2), np.float32), 'rainbow-unicorn')
    with pytest.raises(ValueError, match='high > low'):
        colorize_heatmap(np.zeros((2, 2), np.float32), value_range=(1, 1))


def test_overlay_blends_and_contact_sheet_tiles_images():
    black = np.zeros((10, 20, 3), np.uint8)
    white = np.full((5, 10, 3), 255, np.uint8)
    blended = overlay(black, white, alpha=0.5)
    assert blended.shape == black.shape and 120 <= blended.mean() <= 135
    sheet = contact_sheet([[black, white], [white[:, :, 0]]], titles=[['a', 'b'], ['c']], gap=2)
    assert sheet.shape == (10 * 2 + 2, 20 * 2 + 2, 3)
