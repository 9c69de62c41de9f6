"""configs/*.toml through pfml_core/configs.py: every file parses to the paper's settings
(docs/method.md, sections 3 and 6), builds its ResNet-50 (no download), and bad files fail clearly."""
import numpy as np
import pytest
import torch
from PIL import Image

from pfml_core.data import transforms
from pfml_core.training import presets as configs
from pfml_core.training.models import build_model

PAPER = {  # name: (dataset, weight decay, proxies per class)
    "cub200_resnet50": ("cub200", 5e-4, 15),
    "cars196_resnet50": ("cars196", 1e-4, 15),
    "sop_resnet50": ("sop", 1e-4, 2),
}


def test_every_config_is_listed():
    assert configs.config_names() == sorted(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_config_has_the_paper_settings(name):
    c = configs.load_config(name)
    dataset, wd, m = PAPER[name]
    assert (c["dataset"], c["data"], c["weight_decay"]) == (dataset, dataset, wd)
    assert c["loss_params"] == {"alpha": 3.0, "delta": 0.2, "proxies_per_class": m}
    assert (c["model"], c["embedding_size"], c["epochs"], c["proxy_lr_multiplier"]) == \
        ("resnet50", 512, 200, 100.0)
    assert c["classes_per_batch"] * c["samples_per_class"] == 100  # paper batch
    assert c["lr"] in (1e-4, 5e-4) and c["freeze_bn"] and c["amp"] and c["warmup_epochs"] >= 1
    assert configs.train_config(c).validate().lr == c["lr"]


@pytest.mark.parametrize("name", sorted(PAPER))
def test_config_builds_its_model(name):
    c = configs.load_config(name)
    torch.manual_seed(0)
    # as the engine builds it: models.build_model, then BatchNorm frozen per the config
    size = configs.IMAGE_SIZE
    model = build_model(c["model"], (3, size, size), c["embedding_size"], pretrained=False)
    assert c["freeze_bn"]
    configs.freeze_batchnorm(model)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bn) == 53  # ResNet-50
    assert all(not m.training and not m.weight.requires_grad for m in bn)
    before = bn[0].running_mean.clone()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))  # small input keeps the test fast
    assert out.shape == (2, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert torch.equal(bn[0].running_mean, before)  # frozen statistics


def test_transforms_of_a_config():
    train_tf, eval_tf = configs.build_transforms(configs.load_config("cub200_resnet50"))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8))
    assert train_tf(img).shape == eval_tf(img).shape == (3, 224, 224)
    # test: 400 x 300 -> 341 x 256 (shorter side 256), centre crop at left 58, top 16
    expected = np.asarray(img.resize((341, 256), Image.BILINEAR), np.float32)[16:240, 58:282] / 255
    np.testing.assert_allclose(eval_tf(img).permute(1, 2, 0).numpy(), expected, atol=1e-6)
    crop = train_tf.transforms[1].transforms[0]  # (RGB, crop + flip, to float): the crop
    assert (crop.size, crop.scale) == ((224, 224), transforms.PAPER_CROP_SCALE)
    torch.manual_seed(0)
    x = train_tf(img)
    assert 0 <= x.min() and x.max() <= 1  # not normalised: the ResNet normalises its input


def test_overrides_and_data_root(tmp_path):
    c = configs.load_config("sop_resnet50", data_root=tmp_path, epochs=3, warmup_epochs=0)
    assert (c["data_root"], c["epochs"], c["warmup_epochs"]) == (str(tmp_path), 3, 0)


@pytest.mark.parametrize("text, match", [
    ('dataset = "imagenet"', "dataset must be one of"),
    ('dataset = "cub200"\nbatch_size = 3', "unknown TrainConfig keys"),
    ('dataset = "cub200"\nlr = -1.0', "lr must be"),
    ('dataset = "cub200"\nepochs = 5\n[optim]\nepochs = 6', "'epochs' is set twice"),
    ('dataset = "cub200"\namp = "yes"', "amp must be true or false"),
    ('dataset = "cub200"\nepochs = 2\nwarmup_epochs = 5', "warmup_epochs"),
    ("dataset = ", "not valid TOML"),
])
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        configs.load_config(path)


def test_unknown_config_name():
    with pytest.raises(ValueError, match="neither a .toml file nor one of"):
        configs.load_config("imagenet_vit")
