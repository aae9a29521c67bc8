"""Profiles resolve with overrides and reject unknown names."""
import pytest

from facexai import profiles


def test_every_profile_resolves():
    for name in profiles.available():
        cfg = profiles.resolve(name)
        assert cfg.run_name == name and cfg.models and cfg.n_identities > 0


def test_overrides_and_empty_values():
    cfg = profiles.resolve("smoke", models="FN_C, DLIB", seed=7, data_root="", run_name="mine")
    assert cfg.models == ("FN_C", "DLIB") and cfg.seed == 7 and cfg.run_name == "mine"
    assert cfg.data_root == profiles.resolve("smoke").data_root
    assert cfg.figures_dir.name == "mine"


def test_unknown_profile_and_setting():
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.resolve("nope")
    with pytest.raises(ValueError, match="unknown settings"):
        profiles.resolve("smoke", colour="red")


def test_unknown_model_is_rejected_early():
    with pytest.raises(ValueError, match="unknown model 'NOPE'"):
        profiles.resolve("smoke", models="SFACE,NOPE")


def test_profile_data_and_figures_folder(tmp_path):
    root, pairs = profiles.profile_data("smoke")
    assert root == profiles.resolve("smoke").data_root and root.is_absolute() and pairs is None
    assert profiles.resolve("smoke", run_name="x").figures_dir == profiles.REPO_ROOT / "figures" / "x"
    assert profiles.resolve("smoke", figures_dir=str(tmp_path / "f")).figures_dir == tmp_path / "f"
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.profile_data("nope")
