"""The real-frame configuration (preset ``real``): imported segmentation weights, predicted maps as the
synthesis and data generator's input, a label set other than the dataset's, on a tiny CamVid-layout set."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from anomaly_seg_ros.errors import AnomalySegError, ModelError
from anomaly_seg_ros.labels import CAMVID, CITYSCAPES, IGNORE_INDEX, SYNTHETIC, class_mapping
from anomaly_seg_ros.networks import espnetv2
from anomaly_seg_ros.training import load_train_config, train_all
from anomaly_seg_ros.training.config import ConfigError
from anomaly_seg_ros.training.model_dir import model_config_for
from anomaly_seg_ros.training.predicted import components_as_instances

# ESPNetv2 needs multiples of 16; SqueezeNet at least 17 pixels.
REAL_TINY_SIZES = {'segmentation': [64, 128], 'synthesis': [32, 64], 'perceptual': [32, 64],
                   'dissimilarity': [32, 64]}


@pytest.fixture(scope='module')
def tiny_camvid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CamVid SegNet layout, 4 train and 2 val frames of 96x72 with a void (11) block in each."""
    root = tmp_path_factory.mktemp('tiny_camvid')
    rng = np.random.default_rng(0)
    for split, count in (('train', 4), ('val', 2)):
        (root / split).mkdir()
        (root / f'{split}annot').mkdir()
        for i in range(count):
            labels = np.full((72, 96), 3, np.uint8)      # road
            labels[:30] = 0                                # sky
            labels[40:60, 10 + 10 * i:40 + 10 * i] = 11    # void object
            image = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
            cv2.imwrite(str(root / split / f'f{i}.png'), image)
            cv2.imwrite(str(root / f'{split}annot' / f'f{i}.png'), labels)
    return root


@pytest.fixture(scope='module')
def fake_espnetv2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict in the EdgeNets Cityscapes layout (random weights, scale 2.0)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('weights') / 'espnetv2_s_2.0_city_512x256.pth'
    torch.save(espnetv2().state_dict(), path)
    return path


def _real_config(root: Path, weights: Path, objects: Path | None = None, **sets):
    """The real preset at tiny sizes; without ``objects`` its data generator falls back to sources A and B."""
    generator = {'objects': str(objects)} if objects else {'sources': ['A', 'B'], 'void': 'anomaly'}
    data = {'input_sizes': REAL_TINY_SIZES, 'data': {'root': str(root)}, 'calibration': {'frames': 4},
            'segmentation': {'pretrained': str(weights)},
            'synthesis': {'epochs': 1, 'batch_size': 2, 'discriminator': {'ndf': 8, 'n_layers': 3}},
            'dissimilarity': {'epochs': 1, 'batch_size': 2, 'generator': generator}, 'ensemble': {'grid': [0, 1]}}
    data.update(sets)
    return load_train_config('real', sets=data)


def test_components_of_object_classes_become_cityscapes_instance_ids():
    car, person, road = CITYSCAPES.train_id('car'), CITYSCAPES.train_id('person'), CITYSCAPES.train_id('road')
    semantic = np.full((10, 20), road, np.uint8)
    semantic[1:3, 1:3] = car
    semantic[6:8, 10:14] = car
    semantic[5, 18] = person
    instance = components_as_instances(semantic, CITYSCAPES)
    assert set(np.unique(instance[semantic == car]).tolist()) == {26001, 26002}  # two separate cars
    assert instance[5, 18] == 24001
    assert not instance[semantic == road].any()  # stuff classes carry no instance


def test_cityscapes_classes_map_to_camvid_and_unknown_pairs_are_refused():
    table = class_mapping(CITYSCAPES, CAMVID)
    assert table[CITYSCAPES.train_id('truck')] == CAMVID.train_id('car')
    assert table[CITYSCAPES.train_id('sidewalk')] == CAMVID.train_id('pavement')
    assert table[IGNORE_INDEX] == IGNORE_INDEX
    assert set(table[:CITYSCAPES.num_classes].tolist()) <= set(range(CAMVID.num_classes))
    assert np.array_equal(class_mapping(CAMVID, CAMVID)[:11], np.arange(11))
    with pytest.raises(KeyError, match="from label set 'camvid' to 'synthetic'"):
        class_mapping(CAMVID, SYNTHETIC)


def test_real_preset_swaps_whole_architectures_instead_of_merging_their_arguments(tiny_camvid, fake_espnetv2_file):
    config = _real_config(tiny_camvid, fake_espnetv2_file)
    assert config.label_set == 'cityscapes' and config.data.semantic == 'predicted'
    model = model_config_for(config, CITYSCAPES)
    assert model.stage('segmentation').architecture == {'name': 'espnetv2', 'num_classes': 19, 'scale': 2.0,
                                                       'keep_background': False}
    assert model.stage('perceptual').architecture == {'name': 'squeezenet_features', 'distance': 'lpips'}


def test_another_label_set_than_the_datasets_needs_predicted_maps(tiny_camvid, fake_espnetv2_file, tmp_path):
    from anomaly_seg_ros.training import train_segmentation
    config = _real_config(tiny_camvid, fake_espnetv2_file, data={'root': str(tiny_camvid), 'semantic': 'ground_truth'})
    with pytest.raises(AnomalySegError, match='set data.semantic: predicted'):
        train_segmentation(config, tmp_path / 'model', show_progress=False, log=lambda _: None)


def test_import_refuses_weights_of_another_width(tiny_camvid, tmp_path):
    from anomaly_seg_ros.training import train_segmentation
    other = tmp_path / 'espnetv2_s_1.0_city.pth'
    torch.save(espnetv2(scale=1.0).state_dict(), other)
    with pytest.raises(ModelError, match='file is s=1.0, architecture says scale 2.0'):
        train_segmentation(_real_config(tiny_camvid, other), tmp_path / 'model', show_progress=False,
                           log=lambda _: None)


def test_real_preset_needs_the_objects_of_source_c(tiny_camvid):
    with pytest.raises(ConfigError, match='--objects DIR'):
        load_train_config('real', sets={'data': {'root': str(tiny_camvid)}})


def test_train_all_real_builds_a_cityscapes_model_from_imported_weights_and_predicted_maps(
        tiny_camvid, fake_espnetv2_file, object_bank_root, tmp_path):
    from anomaly_seg_ros.pipeline import AnomalyPipeline
    out, work = tmp_path / 'model', tmp_path / 'work'
    lines: list[str] = []
    train_all(_real_config(tiny_camvid, fake_espnetv2_file, object_bank_root), out, work, show_progress=False,
              log=lines.append)
    meta = yaml.safe_load((out / 'model.yaml').read_text())
    assert meta['label_set']['name'] == 'cityscapes'
    segmentation = meta['provenance']['stages']['segmentation']
    assert segmentation['steps'] == 0 and len(segmentation['pretrained']['sha256']) == 64
    assert segmentation['validation']['val_classes'] == 'cityscapes mapped to camvid'
    # The predicted maps are computed once per split and reused by the later stages.
    assert sorted(p.name.split('_')[0] for p in (work / 'predicted').glob('*.npy')) == ['train', 'val']
    assert any('predicted maps: reusing' in line for line in lines)
    generated = [yaml.safe_load((d / 'meta.yaml').read_text()) for d in (work / 'generated').iterdir()]
    assert {(m['description']['source'], m['description']['split']) for m in generated} == {
        ('A', 'train'), ('C', 'train'), ('C', 'val')}  # validation: the held-out objects alone
    assert all(m['description']['semantic'] == 'predicted' for m in generated)
    source_c = next(m for m in generated if m['description']['source'] == 'C' and m['description']['split'] == 'train')
    assert source_c['pixels']['anomaly'] > 0 and source_c['description']['void'] == 'ignore'
    # CamVid's void blocks are ignored, not anomalies: the only anomalies are the pasted objects.
    assert source_c['pixels']['ignored'] > 0
    ensemble = meta['provenance']['stages']['ensemble']
    assert ensemble['criterion'].startswith('lowest FPR95 among the vectors with AP >= the best single cue')
    assert ensemble['validation']['ap'] >= max(cue['ap'] for cue in ensemble['single_cues'].values())
    rgb = np.random.default_rng(1).integers(0, 255, (72, 96, 3), dtype=np.uint8)
    with AnomalyPipeline.from_model_dir(out, backend='onnxruntime') as pipeline:
        result = pipeline.process(rgb, outputs=['semantic', 'anomaly'])
    assert result.semantic.max() < 19 and np.isfinite(result.anomaly).all()


# --------------------------------------------------------------------------------------------------
# Outlier exposure of the imported segmentation network (segmentation_oe.py)

def test_outlier_loss_is_the_cross_entropy_to_uniform_on_the_pasted_pixels_only():
    from anomaly_seg_ros.training.segmentation_oe import outlier_exposure_loss
    logits = torch.zeros(1, 4, 2, 3)
    logits[0, 1] = 5.0  # confident class 1 everywhere
    target = torch.full((1, 2, 3), 1, dtype=torch.long)
    outlier = torch.zeros(1, 2, 3, dtype=torch.bool)
    outlier[0, 0, 0] = True
    target[outlier] = IGNORE_INDEX
    total, inlier, uniform = outlier_exposure_loss(logits, target, outlier, 0.5)
    log_p = torch.log_softmax(logits, dim=1)
    assert float(inlier) == pytest.approx(float(-log_p[0, 1, 0, 1]), rel=1e-6)  # confident and right: small
    assert float(uniform) == pytest.approx(float(-log_p[0, :, 0, 0].mean()), rel=1e-6)
    assert float(total) == pytest.approx(float(inlier) + 0.5 * float(uniform), rel=1e-6)
    flat = torch.zeros(1, 4, 2, 3)  # the uniform softmax: the outlier term's minimum, log(C)
    assert float(outlier_exposure_loss(flat, target, outlier, 1.0)[2]) == pytest.approx(np.log(4), rel=1e-6)
    none = torch.zeros(1, 2, 3, dtype=torch.bool)
    assert float(outlier_exposure_loss(logits, target, none, 1.0)[2]) == 0.0


def test_segmentation_outlier_exposure_fine_tunes_the_decoder_and_keeps_the_best_epoch(
        tiny_camvid, fake_espnetv2_file, object_bank_root, tmp_path):
    from anomaly_seg_ros.networks.pretrained import load_espnetv2_cityscapes
    from anomaly_seg_ros.stage_modules import load_network
    from anomaly_seg_ros.training import train_segmentation
    state = torch.load(fake_espnetv2_file, weights_only=True)
    state['bu_dec_l4.merge_layer.3.weight'] *= 30.0  # some confidence: random logits are nearly uniform
    weights = tmp_path / 'confident_espnetv2.pth'
    torch.save(state, weights)
    oe = {'epochs': 3, 'batch_size': 2, 'lr': 1e-3, 'max_miou_drop': 1.0}
    config = _real_config(tiny_camvid, weights, object_bank_root,
                          segmentation={'pretrained': str(weights), 'outlier_exposure': oe})
    out, work = tmp_path / 'model', tmp_path / 'work'
    train_segmentation(config, out, work, show_progress=False, log=lambda _: None)
    record = yaml.safe_load((out / 'model.yaml').read_text())['provenance']['stages']['segmentation']
    run = record['outlier_exposure']
    history = run['history']
    assert [row['epoch'] for row in history] == [1, 2, 3] and run['trainable'] == 'decoder'
    assert history[-1]['loss'] < history[0]['loss']  # the loss's terms are checked on their own above
    aps = [row['val_entropy_ap'] for row in history]
    best = int(np.argmax(aps)) + 1 if max(aps) > run['imported']['val_entropy_ap'] else 0
    assert run['kept_epoch'] == best  # any mIoU is allowed here (max_miou_drop 1.0)
    assert (work / 'validation_objects' / 'pasted.json').is_file()  # the held-out objects scored the epochs

    imported = espnetv2()
    load_espnetv2_cityscapes(imported, weights)
    saved = load_network(out / 'segmentation.pt', 'segmentation', {'name': 'espnetv2', 'num_classes': 19,
                                                                   'scale': 2.0, 'keep_background': False})
    before, after = imported.state_dict(), saved.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith('base_net.'))  # encoder frozen
    changed = [k for k in before if not k.startswith('base_net.') and not torch.equal(before[k], after[k])]
    assert bool(changed) == (best > 0)

    lines: list[str] = []  # the per-epoch state is complete: a resumed run trains nothing more
    train_segmentation(config, out, work, resume=True, show_progress=False, log=lines.append)
    again = yaml.safe_load((out / 'model.yaml').read_text())['provenance']['stages']['segmentation']
    assert any('outlier exposure: resuming' in line for line in lines)
    assert again['outlier_exposure']['history'] == history and again['outlier_exposure']['kept_epoch'] == best


def test_segmentation_outlier_exposure_needs_the_objects_and_imported_weights(tiny_camvid, fake_espnetv2_file,
                                                                              object_bank_root):
    with pytest.raises(ConfigError, match=r'outlier_exposure.*--objects DIR'):
        _real_config(tiny_camvid, fake_espnetv2_file, segmentation={'pretrained': str(fake_espnetv2_file),
                                                                     'outlier_exposure': {'epochs': 1}})
    with pytest.raises(ConfigError, match=r'outlier_exposure fine-tunes imported weights.*--pretrained FILE'):
        _real_config(tiny_camvid, fake_espnetv2_file, object_bank_root,
                     segmentation={'pretrained': None, 'outlier_exposure': {'epochs': 1}})


def test_squeezenet_encoder_of_the_dissimilarity_network_starts_from_the_given_imagenet_file(
        tiny_camvid, fake_espnetv2_file, object_bank_root, tmp_path):
    """--squeezenet-weights serves the perceptual stage and a squeezenet dissimilarity encoder alike: the trained
    encoder is a fine-tuned copy of the file's layers, not a fresh initialization."""
    from anomaly_seg_ros.networks import squeezenet_features
    from anomaly_seg_ros.stage_modules import load_network
    torch.manual_seed(3)
    features = squeezenet_features('lpips', warn_if_random=False)
    arrays = {k.replace('.', '/'): v.numpy() for k, v in features.state_dict().items() if not k.startswith('lpips.')}
    np.savez(tmp_path / 'squeezenet.npz', **arrays)
    config = _real_config(tiny_camvid, fake_espnetv2_file, object_bank_root,
                          squeezenet_weights=str(tmp_path / 'squeezenet.npz'),
                          architectures={'dissimilarity': {'encoder': 'squeezenet'}})
    out = tmp_path / 'model'
    train_all(config, out, tmp_path / 'work', show_progress=False, log=lambda _: None)
    model = yaml.safe_load((out / 'model.yaml').read_text())
    architecture = model['stages']['dissimilarity']['architecture']
    assert architecture['encoder'] == 'squeezenet'
    network = load_network(out / 'dissimilarity.pt', 'dissimilarity', architecture)
    trained = network.encoder.fire5.expand3x3.weight.detach().numpy()
    given = arrays['fire5/expand3x3/weight']
    assert np.abs(trained - given).max() < 0.05 * np.abs(given).max()  # a few Adam steps away from the file
    assert not np.array_equal(trained, given.astype(np.float16).astype(np.float32))  # fine-tuned (.pt: float16)
