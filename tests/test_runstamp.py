"""Every table carries its run's stamp; a table from another run, changed, or unstamped is refused by name."""
import json
import shutil

import pandas as pd
import pytest

from facexai import plots, runstamp

SUMMARY = {"profile": "smoke", "run_name": "run-a", "data_root": "/somewhere/lfw_sample", "seed": 0,
           "selected_identities": 6, "selected_images": 28, "pairs_source": "built from seed 0", "pairs": 40,
           "geometries": ["arcface112"], "models": ["FN_C", "SFACE"]}


def make_run(figures, name: str, **changes) -> dict:
    """A run folder as notebook 00 leaves it (its summary table), and that run's summary dict."""
    summary = SUMMARY | {"run_name": name} | changes
    table = pd.Series(summary, name="value").to_frame().reset_index(names="item")  # as notebook 00 writes it
    plots.save_table(table, figures / name / "00_data" / "summary")
    return summary


def test_table_stamped_with_its_run(tmp_path):
    summary = make_run(tmp_path, "run-a")
    paths = plots.save_table(pd.DataFrame({"x": [1, 2]}), tmp_path / "run-a" / "05_x" / "t")
    assert [p.name for p in paths] == ["t.csv", "t.md", "t.meta.json"]
    meta = json.loads(paths[2].read_text())
    # the stamp read back from the summary table equals the one of the summary dict (summary.json)
    assert meta["stamp"] == runstamp.from_summary(summary) and meta["stamp"]["run_name"] == "run-a"
    runstamp.check(paths[0], runstamp.from_summary(summary))
    # an explicit stamp wins
    plots.save_table(pd.DataFrame({"x": [1]}), tmp_path / "elsewhere" / "t", stamp={"run_name": "z"})
    assert json.loads((tmp_path / "elsewhere" / "t.meta.json").read_text())["stamp"] == {"run_name": "z"}


def test_json_and_table_give_one_stamp(tmp_path):
    odd = SUMMARY | {"note": None, "ratio": 1 / 3, "flag": True, "nested": {"a": [1, 2]}}
    make_run(tmp_path, "run-a", **{k: v for k, v in odd.items() if k not in SUMMARY})
    table = runstamp.read_summary_table(tmp_path / "run-a" / runstamp.SUMMARY_TABLE)
    assert runstamp.from_summary(table) == runstamp.from_summary(odd | {"run_name": "run-a"})


def test_stamp_identity():
    a = runstamp.from_summary(SUMMARY)
    assert runstamp.from_summary(SUMMARY | {"data_root": "/other/clone/lfw_sample"}) == a  # location is not identity
    assert runstamp.from_summary(SUMMARY | {"selected_images": 27})["data_digest"] != a["data_digest"]
    assert runstamp.from_summary(SUMMARY | {"seed": 1})["data_digest"] != a["data_digest"]
    assert runstamp.from_summary(SUMMARY | {"profile": "quick"})["settings_digest"] != a["settings_digest"]
    assert a["settings_digest"] == runstamp.settings_digest("smoke") != ""


def test_copied_changed_or_unstamped_tables_are_refused(tmp_path):
    make_run(tmp_path, "run-a")
    other = make_run(tmp_path, "run-b", data_root="/x/other_faces", selected_images=31)
    plots.save_table(pd.DataFrame({"x": [1, 2]}), tmp_path / "run-a" / "05_x" / "t")
    # a table copied (with its sidecar) from run-a into run-b
    (tmp_path / "run-b" / "05_x").mkdir()
    for name in ("t.csv", "t.meta.json"):
        shutil.copy(tmp_path / "run-a" / "05_x" / name, tmp_path / "run-b" / "05_x" / name)
    copied = tmp_path / "run-b" / "05_x" / "t.csv"
    with pytest.raises(runstamp.RunStampError, match=r"table 05_x/t.csv was produced by another run: run_name 'run-a'"):
        runstamp.check(copied, runstamp.from_summary(other), name="05_x/t.csv")
    # the same run name on another data set is caught by the data digest
    same_name = make_run(tmp_path, "run-a", data_root="/x/other_faces")
    with pytest.raises(runstamp.RunStampError, match="data_digest"):
        runstamp.check(tmp_path / "run-a" / "05_x" / "t.csv", runstamp.from_summary(same_name))
    # a table changed after it was stamped
    plots.save_table(pd.DataFrame({"x": [1]}), tmp_path / "run-b" / "05_x" / "u")
    (tmp_path / "run-b" / "05_x" / "u.csv").write_text("x\n9\n")
    with pytest.raises(runstamp.RunStampError, match="u.csv changed after"):
        runstamp.check(tmp_path / "run-b" / "05_x" / "u.csv", runstamp.from_summary(other))
    # no sidecar at all
    (tmp_path / "run-b" / "05_x" / "v.csv").write_text("x\n1\n")
    with pytest.raises(runstamp.RunStampError, match="v.csv has no run stamp"):
        runstamp.check(tmp_path / "run-b" / "05_x" / "v.csv", runstamp.from_summary(other))


def test_environment_stamp(tmp_path, monkeypatch):
    monkeypatch.setenv(runstamp.ENV, json.dumps({"run_name": "from-env"}))
    plots.save_table(pd.DataFrame({"x": [1]}), tmp_path / "r" / "n" / "t")
    assert json.loads((tmp_path / "r" / "n" / "t.meta.json").read_text())["stamp"] == {"run_name": "from-env"}


def test_changed_settings_are_named(tmp_path, monkeypatch):
    summary = make_run(tmp_path, "run-a")
    plots.save_table(pd.DataFrame({"x": [1]}), tmp_path / "run-a" / "05_x" / "t")
    smoke = runstamp.settings("smoke")
    monkeypatch.setattr(runstamp, "settings", lambda profile: smoke | {"rise_masks": 1234})
    changed = rf"\(settings changed: rise_masks {smoke['rise_masks']!r} -> 1234\)"
    with pytest.raises(runstamp.RunStampError, match=r"settings_digest .* " + changed):
        runstamp.check(tmp_path / "run-a" / "05_x" / "t.csv", runstamp.from_summary(summary))


def test_descriptive_texts_are_not_part_of_the_stamp(monkeypatch):
    """Rewording a profile's description or time estimate leaves every table its run's; a result setting does not."""
    from facexai import profiles

    table = profiles.available()["smoke"]
    assert set(runstamp.DESCRIPTIVE) <= set(table)  # the texts exist, and the stamp leaves them out
    before = runstamp.settings_digest("smoke")
    reworded = {**profiles.available(), "smoke": table | {"description": "new words", "estimate": "a day"}}
    monkeypatch.setattr(profiles, "available", lambda: reworded)
    assert runstamp.settings_digest("smoke") == before
    monkeypatch.setattr(profiles, "available", lambda: {"smoke": table | {"rise_masks": 1234}})
    assert runstamp.settings_digest("smoke") != before


def old_style(sidecar) -> None:
    """Rewrite a sidecar as stamped before: settings with the descriptive texts, its digest over all of them."""
    meta = json.loads(sidecar.read_text())
    stored = meta["stamp"]["settings"] | {"description": "words", "estimate": "minutes"}
    meta["stamp"] |= {"settings": stored, "settings_digest": runstamp._digest(stored)}
    sidecar.write_text(json.dumps(meta))


def test_old_stamps_are_restamped_only_when_consistent_and_unchanged(tmp_path):
    summary = make_run(tmp_path, "run-a")
    folder = tmp_path / "run-a" / "05_x"
    for name in ("ok", "edited", "inconsistent"):
        plots.save_table(pd.DataFrame({"x": [1, 2]}), folder / name)
        old_style(folder / f"{name}.meta.json")
    with pytest.raises(runstamp.RunStampError, match="settings_digest"):  # old stamps fail today's check
        runstamp.check(folder / "ok.csv", runstamp.from_summary(summary))
    (folder / "edited.csv").write_text("x\n3\n")  # the table changed after it was stamped
    meta = json.loads((folder / "inconsistent.meta.json").read_text())
    meta["stamp"]["settings"]["rise_masks"] = 1234  # its digest is not of its stored settings
    (folder / "inconsistent.meta.json").write_text(json.dumps(meta))

    assert [runstamp.restamp_descriptive(folder / f"{n}.meta.json") for n in ("ok", "edited", "inconsistent")] \
        == [True, False, False]
    runstamp.check(folder / "ok.csv", runstamp.from_summary(summary))  # the same run again
    assert runstamp.restamp_descriptive(folder / "ok.meta.json") is False  # already current: left alone
    with pytest.raises(runstamp.RunStampError, match="changed after"):
        runstamp.check(folder / "edited.csv", runstamp.from_summary(summary))
