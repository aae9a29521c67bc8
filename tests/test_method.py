"""The [method] table: one place for q, the fills, the CAM layer and the LEAM definition, read by every notebook."""
import re
from pathlib import Path

import jupytext
import pytest

from facexai import profiles

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
METHOD_NOTEBOOKS = ["03_leam_layers", "06_occlusion_validation", "07_transferability", "08_xai_generalizability"]


def test_method_defaults_and_overrides():
    m = profiles.method()
    assert (m.q, m.fill, m.cam_layer, m.target, m.weighting, m.antialias) == (1.0, "black", -2, "cosine",
                                                                              "elementwise", True)
    assert m.fill in m.fills and "method" not in profiles.available()
    m2 = profiles.method(q=2, fills="blur, black", fill="blur", antialias=None)
    assert m2.q == 2.0 and m2.fills == ("blur", "black") and m2.fill == "blur" and m2.antialias is True
    assert profiles.method(antialias=False).antialias is False
    with pytest.raises(ValueError, match="unknown \\['colour'\\]"):
        profiles.method(colour="red")
    with pytest.raises(ValueError, match="not among the fills"):
        profiles.method(fill="pink")


def _method_of(notebook: str, parameters: dict) -> profiles.Method:
    """Run the notebook's own parameters cell (with papermill-style ``parameters``) and its method line."""
    nb = jupytext.read(NOTEBOOKS / f"{notebook}.py")
    param_cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(param_cell.source, ns)
    ns.update(parameters)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    call = re.search(r"^method = profiles\.method\([^)]*\)", code, re.M)
    assert call, f"{notebook} does not read the method table"
    exec("from facexai import profiles\n" + call.group(0), ns)
    return ns["method"]


@pytest.mark.parametrize("notebook", METHOD_NOTEBOOKS)
def test_changing_q_in_the_method_table_changes_every_notebook(notebook, tmp_path, monkeypatch):
    source = (NOTEBOOKS / f"{notebook}.py").read_text()
    params = source.split('# %% tags=["parameters"]')[1].split("# %%")[0]
    assert not re.search(r"^(q|fill|fills|cam_layer|target|weighting|margin) = [^N]", params, re.M), \
        f"{notebook} sets a method setting in its parameters instead of leaving it to the method table"
    assert not re.search(r"\bq=1(\.0)?\b|qs=\[1(\.0)?\]", source), f"{notebook} hard-codes q"
    assert _method_of(notebook, {}).q == 1.0
    edited = tmp_path / "profiles.toml"
    edited.write_text(re.sub(r"^q = 1\.0", "q = 2.5", profiles.PROFILES_FILE.read_text(), count=1, flags=re.M))
    monkeypatch.setattr(profiles, "PROFILES_FILE", edited)
    assert _method_of(notebook, {}).q == 2.5
    if "\nq = None" in params:  # a run's parameter still overrides the table
        assert _method_of(notebook, {"q": 0.5}).q == 0.5


def test_changing_q_in_the_method_table_changes_the_ledger(tmp_path, monkeypatch):
    """The ledger judges the occlusion rows of the declared q and fill, not a hard-coded 1% black."""
    import pandas as pd

    from facexai import claims

    rows = pd.DataFrame([dict(explainer="leam", fill=fill, q=q, selection=sel, model="M", mean_drop=drop,
                              ci_lo=drop - 0.01, ci_hi=drop + 0.01, in_sample=False)
                         for fill, q, drop in [("black", 1.0, 0.1), ("black", 2.5, 0.2), ("blur", 1.0, 0.3)]
                         for sel in ("critical", "random")])
    assert set(claims.occlusion_selected(rows, claims.declared_occlusion()).mean_drop) == {0.1}
    edited = tmp_path / "profiles.toml"
    text = re.sub(r"^q = 1\.0", "q = 2.5", profiles.PROFILES_FILE.read_text(), count=1, flags=re.M)
    edited.write_text(text)
    monkeypatch.setattr(profiles, "PROFILES_FILE", edited)
    assert set(claims.occlusion_selected(rows, claims.declared_occlusion()).mean_drop) == {0.2}
    edited.write_text(re.sub(r'^fill = "black"', 'fill = "blur"', profiles.PROFILES_FILE.read_text().replace(
        "q = 2.5", "q = 1.0", 1), count=1, flags=re.M))
    assert set(claims.occlusion_selected(rows, claims.declared_occlusion()).mean_drop) == {0.3}
