"""The `ddpd` command line: help, parameter parsing, clear errors with exit status 1."""

import subprocess
import sys
from pathlib import Path

import pytest

from ddpd.cli import build_parser, load_params, main

BIN = Path(sys.executable).parent


def test_console_script_help_lists_every_step():
    out = subprocess.run([BIN / "ddpd", "--help"], capture_output=True, text=True, check=True)
    for command in ("simulate-stars", "track-video", "train", "rollout", "statistics"):
        assert command in out.stdout


def test_params_json_and_file(tmp_path):
    assert load_params('{"a": 1}') == {"a": 1}
    path = tmp_path / "p.yaml"
    path.write_text("a: 2\nb: [1, 2]\n")
    assert load_params(f"@{path}") == {"a": 2, "b": [1, 2]}
    with pytest.raises(ValueError, match="not valid JSON"):
        load_params("{a: 1")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_params("[1, 2]")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_params(f"@{tmp_path / 'nope.yaml'}")


def test_error_exit_names_the_problem(tmp_path, capsys):
    missing = tmp_path / "missing.h5"
    code = main(["statistics", "--trajectory", str(missing), "--out", str(tmp_path / "s.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert "ddpd statistics: error:" in err and "missing.h5" in err
    assert not (tmp_path / "s.json").exists()


def test_named_paths_are_checked(tmp_path, capsys):
    code = main(
        ["compare", "--truth", "t.json", "--model", "oops", "--out-csv", "a", "--out-md", "b"]
    )
    assert code == 1
    assert "NAME=PATH" in capsys.readouterr().err
    # one curve per name in a figure: a name given twice is refused, not silently dropped
    code = main(["plot-statistics", "--stats", "a=1.json", "a=2.json", "--out-prefix",
                 str(tmp_path / "fig")])
    assert code == 1
    assert "--stats: name(s) ['a'] given more than once" in capsys.readouterr().err


def test_parser_requires_outputs():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "d.h5"])


def test_existing_outputs_are_not_replaced_without_force(tmp_path, capsys):
    out = tmp_path / "stats.json"
    out.write_text("precious")
    code = main(["statistics", "--trajectory", str(tmp_path / "t.h5"), "--out", str(out)])
    assert code == 1
    assert "output exists" in capsys.readouterr().err
    assert out.read_text() == "precious"
    figure = tmp_path / "fig"
    (tmp_path / "fig.pdf").write_text("precious")
    args = build_parser().parse_args(
        ["plot-learning-curve", "--curve", "c.csv", "--out-prefix", str(figure)]
    )
    from ddpd.cli import existing_outputs

    assert existing_outputs(args) == [tmp_path / "fig.pdf"]
