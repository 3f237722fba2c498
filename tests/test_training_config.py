"""Training configs: shipped files load, typos and wrong types are named, overrides apply."""

import pytest

from symmcd.config import TrainConfig, available_configs, load_config, save_config
from symmcd.errors import ConfigError
from symmcd.training.module import warmup_cosine_factor


def test_shipped_configs_load():
    names = available_configs()
    assert {"cpu-small", "paper", "full-cell", "tiny"} <= set(names)
    for name in names:
        assert isinstance(load_config(name), TrainConfig)


def test_paper_and_full_cell_settings():
    paper = load_config("paper")
    assert (paper.model.hidden_dim, paper.model.num_layers) == (1024, 8)
    assert paper.diffusion.num_steps == 1000
    full, small = load_config("full-cell"), load_config("cpu-small")
    assert full.representation == "full_cell"
    assert not full.model.use_site_symmetry
    assert (full.model.hidden_dim, full.model.num_layers) == (
        small.model.hidden_dim,
        small.model.num_layers,
    )


def test_unknown_key_is_named_with_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("model:\n  hiden_dim: 12\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'model.hiden_dim' in typo.yaml"):
        load_config(path)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"'batch_size' in cpu-small.yaml must be int"):
        load_config("cpu-small", {"batch_size": "large"})
    with pytest.raises(ConfigError, match=r"'model.num_layers'"):
        load_config("tiny", {"model": {"num_layers": 2.5}})
    with pytest.raises(ConfigError, match=r"'precision'"):
        load_config("tiny", {"precision": "fp8"})


def test_unknown_name_lists_shipped_configs():
    with pytest.raises(ConfigError, match="cpu-small"):
        load_config("no-such-config")


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config("tiny", {"model.hidden_dim": 24, "lr": "3e-4", "precision": 32})
    assert cfg.model.hidden_dim == 24 and cfg.lr == pytest.approx(3e-4) and cfg.precision == "32"
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_semantic_checks():
    with pytest.raises(ConfigError, match="'batch_size' must be positive"):
        load_config("tiny", {"batch_size": 0})
    with pytest.raises(ConfigError, match="'ema_decay'"):
        load_config("tiny", {"ema_decay": 1.0})


def test_warmup_cosine_schedule():
    factors = [warmup_cosine_factor(s, 10, 110, floor=0.01) for s in range(120)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.01 + 0.99 * 0.5)
    assert factors[110] == pytest.approx(0.01) and factors[119] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
