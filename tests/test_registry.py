"""The registry: known names, clear errors for missing or tampered weights, checksummed cache."""
import dataclasses

import pytest
import torch

from facexai.models import registry
from facexai.models.registry import MODELS, WeightsError, get_spec, load_model


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="known models: .*DLIB"):
        get_spec("RESNET_9000")


def test_every_spec_is_consistent():
    for spec in MODELS.values():
        conv = registry._converter(spec)
        assert conv.INPUT_SIZE == spec.input_size and conv.EMBEDDING_DIM == spec.embedding_dim, spec.name
        assert spec.geometry in {"arcface112", "facenet160", "dlib150"}


def _patched(monkeypatch, name, **changes):
    spec = MODELS[name]
    new = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, **changes))
    monkeypatch.setitem(MODELS, name, new)
    return new


def test_missing_weights_package(monkeypatch, tmp_path):
    _patched(monkeypatch, "DLIB", package="no_such_weights_pkg", pip_name="no-such-weights==1.0")
    with pytest.raises(WeightsError, match="no-such-weights==1.0.*not installed"):
        load_model("DLIB", cache_root=tmp_path)


def test_source_checksum_mismatch(monkeypatch, tmp_path):
    _patched(monkeypatch, "DLIB", sha256="0" * 64)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_model("DLIB", cache_root=tmp_path)


def test_converted_cache_is_checksummed(tmp_path, caplog):
    model = load_model("DLIB", cache_root=tmp_path)
    cached = next((tmp_path / "weights").glob("DLIB-*.pt"))
    assert cached.with_suffix(".pt.sha256").is_file()
    x = torch.rand(2, 3, 150, 150) * 255
    expected = model(x)
    # tamper with the cached conversion: it is detected and converted again, never used as is
    state = torch.load(cached, weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0
    torch.save(state, cached)
    with caplog.at_level("WARNING"):
        again = load_model("DLIB", cache_root=tmp_path)
    assert "does not match its recorded checksum" in caplog.text
    torch.testing.assert_close(again(x), expected)


def test_a_flipped_byte_of_the_conversion_is_caught_by_its_checksum(tmp_path, caplog):
    """The converted file is written without the zip's CRC-32s (the sidecar's SHA-256 checks it): one damaged byte
    of tensor data is still caught and converted again, and torch's own CRC setting is left as it was."""
    expected = load_model("DLIB", cache_root=tmp_path).state_dict()
    assert torch.serialization.get_crc32_options()
    cached = next((tmp_path / "weights").glob("DLIB-*.pt"))
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the tensors' bytes: the archive still opens
    cached.write_bytes(data)
    with caplog.at_level("WARNING"):
        again = load_model("DLIB", cache_root=tmp_path).state_dict()
    assert "does not match its recorded checksum" in caplog.text
    assert all(torch.equal(again[k], v) for k, v in expected.items())


def test_meta_built_model_equals_a_default_initialised_one(tmp_path):
    """load_model builds on the meta device and assigns the weights: the same outputs as building with random
    initialisation and copying the weights in, and no parameter or buffer left on the meta device."""
    model = load_model("DLIB", cache_root=tmp_path)
    spec = get_spec("DLIB")
    reference = registry._converter(spec).build()
    reference.load_state_dict(registry.converted_state_dict(spec, tmp_path))
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        torch.testing.assert_close(model.backbone(model.preprocess(x)), reference.eval()(model.preprocess(x)),
                                   rtol=0, atol=0)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(p.requires_grad for p in model.parameters())  # explainers take gradients through them


def test_tensor_the_weights_do_not_set_is_an_error(monkeypatch, tmp_path):
    conv = registry._converter(get_spec("DLIB"))
    build = conv.build

    def with_extra_buffer():
        net = build()
        net.register_buffer("unset", torch.zeros(3), persistent=False)  # not in any state_dict
        return net

    monkeypatch.setattr(conv, "build", with_extra_buffer)
    with pytest.raises(RuntimeError, match=r"DLIB: the converted weights do not set \['unset'\]"):
        load_model("DLIB", cache_root=tmp_path)


def test_user_weights_missing_names_file_and_source(tmp_path):
    with pytest.raises(WeightsError, match="ir50_backbone.pth.*insightface"):
        load_model("IR50", user_weights=tmp_path)


def test_wrong_geometry_input_is_rejected(tmp_path):
    model = load_model("DLIB", cache_root=tmp_path)
    with pytest.raises(ValueError, match=r"expects RGB images \(N, 3, 150, 150\)"):
        model(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        model.layer_path("nope")


def test_registry_table_has_one_row_per_spec():
    table = registry.registry_table(["DLIB", "SFACE"])
    assert tuple(table.columns) == registry.REGISTRY_COLUMNS
    assert table.model.tolist() == list(MODELS)
    by = table.set_index("model")
    assert by["in this run"].to_dict() == {name: name in ("DLIB", "SFACE") for name in MODELS}
    dlib = MODELS["DLIB"]
    assert by.loc["DLIB", "geometry"] == dlib.geometry and by.loc["DLIB", "input"] == dlib.input_size
    assert by.loc["DLIB", "dim"] == dlib.embedding_dim and by.loc["DLIB", "weights"] == dlib.weights.describe()
    assert by.loc["DLIB", "published LFW"] == dlib.published_lfw and by["published LFW"].isna().sum() == sum(
        s.published_lfw is None for s in MODELS.values())
    assert not registry.registry_table()["in this run"].any()
