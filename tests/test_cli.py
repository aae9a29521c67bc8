"""The command line (facexai.cli behind ./run_all.sh): options are checked before any notebook runs.

No test here executes a notebook: bad options stop before, and the plan is checked with --dry-run
or by calling ``cli.plan`` directly.
"""
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO
from facexai import cli


def run_all_sh(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FACEXAI_VENV=os.environ.get("FACEXAI_VENV", str(REPO / ".venv")))
    return subprocess.run(["bash", str(REPO / "run_all.sh"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def plan(*argv: str, cwd: Path | None = None) -> cli.RunPlan:
    return cli.plan(cli.build_parser().parse_args(list(argv)), cwd=cwd)


def fails(capsys, *argv: str) -> str:
    """Run the CLI in-process; assert it refuses with exit code 2 and return its message."""
    assert cli.main(list(argv)) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("option", ["--models", "--profile"])
def test_arguments_are_never_run_as_code(tmp_path, option):
    marker = tmp_path / "INJECTED"
    payload = f"') and __import__('os').system('touch {marker}') or ('"
    res = run_all_sh(option, payload, "--only", "00", "--run-name", "smoke-injection", "--cache-dir", str(tmp_path),
                     cwd=tmp_path)
    assert not marker.exists(), "an argument was executed as code"
    assert res.returncode == 2, res.stdout + res.stderr
    assert ("unknown model" if option == "--models" else "unknown profile") in res.stderr
    assert "(1/" not in res.stdout  # no notebook started


def test_help_prints_the_usage(tmp_path):
    res = run_all_sh("--help", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stdout.startswith("usage: run_all.sh")
    for option in ("--profile", "--only", "--from", "--list", "-p NAME VALUE", "--figures-dir", "--overwrite-committed"):
        assert option in res.stdout, option
    assert "set -euo" not in res.stdout and "shift 2" not in res.stdout


def test_option_without_value_says_so(tmp_path):
    res = run_all_sh("--profile", cwd=tmp_path)
    assert res.returncode == 2
    assert "argument --profile: expected one argument" in res.stderr
    assert "unbound variable" not in res.stderr


def test_relative_paths_resolve_against_the_callers_directory(tmp_path):
    res = run_all_sh("--profile", "smoke", "--dry-run", "--only", "00", "--cache-dir", "rel/cache", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"cache_root='{tmp_path / 'rel' / 'cache'}'" in res.stdout
    assert not (tmp_path / "rel").exists()  # a dry run creates nothing


@pytest.mark.parametrize("device, message", [("tpu", "'tpu' is not a device"), ("abc", "'abc' is not a device"),
                                             ("cuda:x", "'cuda:x' is not a device")])
def test_device_must_be_known(capsys, device, message):
    assert message in fails(capsys, "--dry-run", "--device", device)


def test_cuda_without_a_cuda_device(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "sees no CUDA devices; use --device cpu" in fails(capsys, "--dry-run", "--device", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert plan("--device", "cuda:0", "--profile", "smoke").parameters["00_data"]["device"] == "cuda:0"
    assert "sees 1 CUDA device;" in fails(capsys, "--dry-run", "--device", "cuda:1")


@pytest.mark.parametrize("seed, message", [("abc", "expected an integer >= 0, got 'abc'"), ("1.5", "got '1.5'"),
                                           ("-1", "in [0, 2**32)"), (str(2**32), "in [0, 2**32)")])
def test_seed_must_be_an_integer_numpy_accepts(capsys, seed, message):
    assert message in fails(capsys, "--dry-run", "--profile", "smoke", "--seed", seed)


def test_only_accepts_spaces_and_short_numbers():
    stems = lambda p: [nb.stem[:2] for nb in p.notebooks]  # noqa: E731
    assert stems(plan("--profile", "smoke", "--only", "00, 01")) == ["00", "01"]
    assert stems(plan("--profile", "smoke", "--only", "3,4")) == ["03", "04"]
    numbers = [nb.number for nb in cli.discover()]
    assert stems(plan("--profile", "smoke", "--from", "03")) == [n for n in numbers if n >= "03"]


def test_only_and_from_refuse_unknown_numbers(capsys):
    assert "no notebook numbered '42'" in fails(capsys, "--only", "00,42")
    assert "no notebook numbered '42'" in fails(capsys, "--from", "42")
    assert "exclude each other" in fails(capsys, "--only", "00", "--from", "01")


def test_unknown_profile_and_model(capsys):
    assert "unknown profile 'nope'" in fails(capsys, "--profile", "nope")
    assert "unknown model 'NOPE'" in fails(capsys, "--models", "SFACE,NOPE")


def test_run_name_comes_from_profile_and_data_set(tmp_path):
    own_root, _ = cli.profiles.profile_data("quick")
    assert cli.default_run_name("quick", None, None) == "quick"
    assert cli.default_run_name("quick", own_root, None) == "quick"
    assert cli.default_run_name("quick", tmp_path / "my faces", None) == "quick-my-faces"
    assert cli.default_run_name("quick", None, tmp_path / "pairs.txt") == f"quick-{own_root.name}-pairs"
    p = plan("--data-root", "faces", cwd=tmp_path)
    assert p.run_name == "quick-faces" and p.figures_dir == REPO / "figures" / "quick-faces"
    assert p.parameters["00_data"]["data_root"] == str(tmp_path / "faces")
    assert p.outputs_dir == REPO / "outputs" / "quick-faces" / "notebooks"


def test_default_run_may_rewrite_its_committed_results():
    p = plan()
    assert p.run_name == "quick" and p.figures_dir == REPO / "figures" / "quick"
    assert plan("--only", "06").figures_dir == REPO / "figures" / "quick"
    own_root, _ = cli.profiles.profile_data("quick")
    assert plan("--data-root", str(own_root), "--device", "cpu").run_name == "quick"  # its own data, named


@pytest.mark.parametrize("argv", [["--seed", "1"], ["--models", "SFACE"], ["--run-name", "quick", "--data-root", "x"],
                                  ["--min-images", "2"],
                                  ["--profile", "smoke", "--run-name", "quick"],
                                  ["--profile", "smoke", "--figures-dir", str(REPO / "figures" / "quick")]])
def test_committed_results_need_an_explicit_flag(capsys, argv):
    message = fails(capsys, "--dry-run", *argv)
    assert "holds committed results" in message and "--overwrite-committed" in message
    if not {"--figures-dir", "--min-images"} & set(argv):  # these also need the notebooks to declare them
        assert cli.main(["--dry-run", *argv, "--overwrite-committed"]) == 0


def test_figures_dir_is_the_runs_folder(tmp_path):
    p = plan("--profile", "smoke", "--figures-dir", "elsewhere", "--only", "00", cwd=tmp_path) \
        if all("figures_dir" in nb.parameters for nb in cli.discover()[:1]) else None
    if p is None:  # the notebooks do not declare figures_dir yet: the CLI must refuse, naming them
        with pytest.raises(cli.UsageError, match="--figures-dir must reach every notebook.*00_data"):
            plan("--profile", "smoke", "--figures-dir", "elsewhere", "--only", "00", cwd=tmp_path)
    else:
        assert p.figures_dir == tmp_path / "elsewhere"
        assert p.parameters["00_data"]["figures_dir"] == str(tmp_path / "elsewhere")


def notebook(stem: str, **defaults) -> cli.Notebook:
    return cli.Notebook(Path(f"{stem}.py"), {k: cli.Parameter(k, v, repr(v), "") for k, v in defaults.items()})


def test_parameters_reach_every_notebook_that_declares_them():
    a, b, c = notebook("06_a", explainer="leam", q=1.0), notebook("07_b", explainer="leam", n_boot=5), notebook("08_c")
    out = cli.forward({"explainer": "gradcam++", "q": "2", "n_boot": "10"}, {}, [a, b, c], [a, b, c])
    assert out == {"06_a": {"explainer": "gradcam++", "q": 2.0}, "07_b": {"explainer": "gradcam++", "n_boot": 10},
                   "08_c": {}}


def test_parameter_nobody_declares_names_the_notebooks():
    a, b = notebook("00_a"), notebook("07_b", explainer="leam")
    with pytest.raises(cli.UsageError, match=r"none of the selected notebooks \(00_a\).*declared by 07_b"):
        cli.forward({"explainer": "gradcam++"}, {}, [a], [a, b])
    with pytest.raises(cli.UsageError, match="no notebook declares it"):
        cli.forward({"colour": "red"}, {}, [a, b], [a, b])


def test_run_wide_settings_must_reach_every_notebook():
    a, b = notebook("00_a", min_images=None), notebook("01_b")
    with pytest.raises(cli.UsageError, match="--min-images must reach every notebook of the run, but 01_b"):
        cli.forward({}, {"min_images": 2}, [a, b], [a, b])
    assert cli.forward({}, {"min_images": 2}, [a], [a, b]) == {"00_a": {"min_images": 2}}


@pytest.mark.parametrize("default, value, expected", [
    ("leam", "3", "3"), (1.0, "2", 2.0), (5, "10", 10), (False, "true", True), (False, "False", False),
    (None, "3", 3), (None, "0.5", 0.5), (None, "None", None), (None, "abc", "abc"), (1.0, 2, 2.0), ("a", 3, "3"), ([1], "[2, 3]", [2, 3])])
def test_values_take_the_type_of_the_default(default, value, expected):
    got = cli.coerce(value, cli.Parameter("x", default, repr(default), ""), "07_b")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("default, value", [(1.0, "abc"), (5, "2.5"), (False, "yes"), (5, "x"), (5, 2.5), ([1], "x"),
                                            (False, 1)])
def test_values_of_the_wrong_type_are_refused(default, value):
    with pytest.raises(cli.UsageError, match="parameter x of 07_b expects"):
        cli.coerce(value, cli.Parameter("x", default, repr(default), ""), "07_b")


def test_parameter_options_and_file(tmp_path):
    taker = next(nb for nb in cli.discover() if any(isinstance(p.default, float) for p in nb.parameters.values()))
    name = next(p.name for p in taker.parameters.values() if isinstance(p.default, float))
    (tmp_path / "params.yaml").write_text(f"{name}: 0.5\n")
    base = ["--profile", "smoke", "--only", taker.number]
    assert plan(*base, "--params-file", "params.yaml", cwd=tmp_path).parameters[taker.stem][name] == 0.5
    assert plan(*base, "--params-file", "params.yaml", "--param", f"{name}=2", cwd=tmp_path) \
        .parameters[taker.stem][name] == 2.0
    assert plan(*base, "-p", name, "3").parameters[taker.stem][name] == 3.0
    with pytest.raises(cli.UsageError, match="is set with --seed"):
        plan(*base, "-p", "seed", "3")
    with pytest.raises(cli.UsageError, match="expected NAME=VALUE"):
        plan(*base, "--param", name)
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(cli.UsageError, match="must hold a mapping"):
        plan(*base, "--params-file", "bad.yaml", cwd=tmp_path)


def test_list_shows_every_notebook_and_its_parameters(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for nb in cli.discover():
        assert nb.stem in out
        for p in nb.parameters.values():
            if p.name not in cli.COMMON:
                assert f"{p.name} = {p.source}" in out


def test_parameters_cell_is_read_with_comments_holding_quotes(tmp_path):
    src = tmp_path / "00_x.py"
    src.write_text(textwrap.dedent('''\
        # %% tags=["parameters"]
        margin = 0.2  # ArcFace margin (target = "arcface")
        layers = ""  # comma-separated; empty: "all"
        n_eval = None
        in_sample = False  # True: in-sample

        # %%
        print(margin)
        '''))
    params = cli.read_parameters(src)
    assert list(params) == ["margin", "layers", "n_eval", "in_sample"]
    assert params["margin"].default == 0.2 and params["margin"].help == 'ArcFace margin (target = "arcface")'
    assert params["layers"].default == "" and params["n_eval"].default is None and params["in_sample"].default is False


def test_dry_run_prints_the_plan_and_writes_nothing(capsys):
    assert cli.main(["--dry-run", "--profile", "smoke", "--run-name", "smoke-dry-run-check", "--only", "00,01"]) == 0
    out = capsys.readouterr().out
    assert "plan: run smoke-dry-run-check (profile smoke)" in out
    assert "00_data: profile='smoke'" in out and "01_models:" in out and "02_parsing" not in out
    assert not (REPO / "figures" / "smoke-dry-run-check").exists()
    assert not (REPO / "outputs" / "smoke-dry-run-check").exists()


def test_parameters_reach_the_notebook_as_literals(tmp_path):
    """papermill writes the parameters into the notebook as code: each must stay one literal."""
    import ast

    from papermill.translators import PythonTranslator

    payload = 'x"; __import__("os").system("touch INJECTED") #\n\'\'\' \\'
    p = plan("--profile", "smoke", "--only", "00", "--run-name", "smoke-literal", "--data-root", payload, cwd=tmp_path)
    values = p.parameters["00_data"]
    tree = ast.parse(PythonTranslator.codify(values))
    assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}
    assert assigned == values and payload in values["data_root"]
