from __future__ import annotations

from pathlib import Path

from rknb import cli, report

ENV_NB = str(Path(__file__).parents[1] / "data" / "matrix" / "env.ipynb")


def test_run_matrix_with_a_bad_file_exits_with_the_usage_code(tmp_path, capsys):
    path = tmp_path / "matrix.yaml"
    path.write_text("clusters: [{name: east}]\nnamespaces: [shop]\nnotebooks: [nope]\n")
    code = cli.main(["run-matrix", str(path), "--output", str(tmp_path / "out")])
    assert code == report.EXIT_USAGE
    assert "no notebook named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_run_matrix_refuses_a_credential_in_the_file_before_running(tmp_path, capsys):
    path = tmp_path / "matrix.yaml"
    path.write_text(
        "clusters: [{name: east, headers: {Authorization: Bearer abc}}]\n"
        f"notebooks: [{ENV_NB}]\n"
    )
    assert cli.main(["run-matrix", str(path), "--output", str(tmp_path)]) == report.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Authorization" in err and "abc" not in err
