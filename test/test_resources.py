"""The shipped model directories and which one each entry point uses by default."""
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.resources import DEMO_MODEL_NAME, default_model_dir


def test_the_default_model_is_built_from_real_frames_with_cityscapes_classes():
    model = load_model_config(default_model_dir())
    assert model.label_set.name == 'cityscapes'
    assert model.stage('segmentation').architecture['name'] == 'espnetv2'
    assert model.provenance['data']['dataset'] == 'camvid'
    assert model.provenance['config']['data']['semantic'] == 'predicted'
    for stage in model.stages:
        assert (default_model_dir() / model.stage(stage).files['onnx']).is_file()


def test_the_demo_model_stays_the_synthetic_scene_model():
    model = load_model_config(default_model_dir(DEMO_MODEL_NAME))
    assert model.provenance['data']['dataset'] == 'synthetic'
    assert default_model_dir(DEMO_MODEL_NAME) != default_model_dir()


def test_every_shipped_model_directory_fits_25_mb():
    root = default_model_dir().parent
    for model_dir in (p for p in root.iterdir() if (p / 'model.yaml').is_file()):
        size = sum(f.stat().st_size for f in model_dir.rglob('*') if f.is_file())
        assert size <= 25 * 1024 * 1024, f'{model_dir.name}: {size / 1e6:.1f} MB'
