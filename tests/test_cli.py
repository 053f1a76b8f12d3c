"""The ``dagrad`` command as a new user meets it: help, mistakes, bad values, failures."""

from __future__ import annotations

import argparse

import pytest

from dagrad import cli
from dagrad.cli import main


def run(argv, capsys):
    """``(exit code, stdout, stderr)`` of ``dagrad ARGV``, whether it returns or exits through argparse."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def commands():
    """``{name: parser}`` of every subcommand."""
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# ---------------------------------------------------------------- help ----


def test_bare_dagrad_prints_the_help_not_an_error(capsys):
    code, out, err = run([], capsys)
    assert code == 2
    assert err.startswith("usage: dagrad") and "error" not in err
    for name in commands():
        assert f"\n    {name}" in err, f"the help does not list {name}"
    assert "examples:" in err and "dagrad COMMAND --help" in err


@pytest.mark.parametrize("name", list(commands()))
def test_every_command_has_a_description_and_examples_in_its_help(name, capsys):
    code, out, _ = run([name, "--help"], capsys)
    assert code == 0
    description = commands()[name].description
    assert description and len(description.split()) >= 8, f"dagrad {name} --help has no real description"
    assert "``" not in description, "docstring markup left in the description"
    examples = out[out.index("examples:"):]
    assert f"  dagrad {name}" in examples


# render.py belongs to another workstream; it has options without help today.
WITHOUT_HELP = {"render": {"--rankdir", "target"}}


@pytest.mark.parametrize("name", list(commands()))
def test_every_option_of_every_command_says_what_it_is_for(name):
    missing = {a.option_strings[-1] if a.option_strings else a.dest
               for a in commands()[name]._actions if not a.help}
    if WITHOUT_HELP.get(name):
        assert missing <= WITHOUT_HELP[name], f"dagrad {name}: options without help: {sorted(missing)}"
        if missing == WITHOUT_HELP[name]:
            pytest.xfail(f"dagrad {name}: {sorted(missing)} still without help (owned elsewhere)")
    assert not missing, f"dagrad {name}: options without help: {sorted(missing)}"


def test_the_demo_seed_has_help():
    seed = next(a for a in commands()["demo"]._actions if "--seed" in a.option_strings)
    assert "seed" in seed.help and "default" in seed.help


# ------------------------------------------------------------ mistakes ----


def test_an_unknown_option_gets_the_commands_usage_and_a_suggestion(capsys):
    code, _, err = run(["ops", "--jsn"], capsys)
    assert code == 2
    assert err.startswith("usage: dagrad ops [-h] [--json]\n")
    assert "dagrad ops: error: unrecognized arguments: --jsn (did you mean --json?)" in err


def test_an_unknown_option_before_any_command_gets_the_root_usage(capsys):
    code, _, err = run(["--versoin"], capsys)
    assert code == 2 and err.startswith("usage: dagrad [-h]")
    assert "did you mean --version?" in err


def test_a_mistyped_command_gets_did_you_mean(capsys):
    code, _, err = run(["rendr"], capsys)
    assert code == 2
    assert "invalid choice: 'rendr'; did you mean 'render'?" in err


def test_a_mistyped_choice_of_an_option_gets_did_you_mean(capsys):
    code, _, err = run(["render", "m.py:f", "-o", "x.svg", "--rankdir", "TD"], capsys)
    assert code == 2 and "did you mean 'TB'?" in err


# -------------------------------------------------------------- values ----


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected a whole number above 0, got '0'"),
    (["--epochs", "two"], "argument --epochs: expected a whole number above 0, got 'two'"),
    (["--batch-size", "-1"], "argument --batch-size: expected a whole number above 0, got '-1'"),
    (["--lr", "nan"], "argument --lr: expected a number above 0, got 'nan'"),
    (["--lr", "0"], "argument --lr: expected a number above 0, got '0'"),
    (["--seed", "-1"], "argument --seed: expected a whole number, 0 or more, got '-1'"),
    (["--hidden", "64,0"], "argument --hidden: expected positive layer sizes"),
])
def test_an_invalid_demo_value_stops_before_training_with_one_line_saying_what_is_wrong(args, message, capsys):
    code, out, err = run(["demo", *args], capsys)
    assert code == 2 and not out
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("dagrad demo: error: ") and message in errors[0], err


def test_a_demo_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    code, _, err = run(["demo", "--out", str(tmp_path / "taken")], capsys)
    assert code == 2 and "argument --out: " in err and "is not a directory" in err


# ------------------------------------------------------------ failures ----


def test_a_file_error_is_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run(["demo", "--out", str(tmp_path / "file" / "sub"), "--epochs", "1"], capsys)
    assert code == 1
    assert err.startswith("dagrad demo: error: ") and len(err.strip().splitlines()) == 1, err


def test_a_demo_that_does_not_learn_says_so(monkeypatch, capsys):
    from dagrad.cli import demo

    monkeypatch.setattr(demo, "main", lambda **kwargs: {"test_accuracy": 0.1})
    code, _, err = run(["demo"], capsys)
    assert code == 1
    assert "held-out accuracy 10.0% is no better than 50%" in err and "--epochs" in err


def test_an_interrupted_command_exits_130_without_a_traceback(monkeypatch, capsys):
    from dagrad.cli import ops

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ops, "run", interrupted)
    code, _, err = run(["ops"], capsys)
    assert code == 130 and err == "dagrad ops: interrupted\n"


# -------------------------------------------------------------- output ----


def test_dagrad_ops_prints_summaries_as_plain_text(capsys):
    code, out, _ = run(["ops"], capsys)
    assert code == 0 and "``" not in out
    add = next(line for line in out.splitlines() if line.startswith("add "))
    assert add.split(None, 2)[2] == "Elementwise sum `x + y`."


@pytest.mark.parametrize("markup, text", [
    ("Elementwise sum ``x + y``.", "Elementwise sum `x + y`."),
    ("See :func:`dagrad.fit` and :py:class:`dagrad.Graph`.", "See `dagrad.fit` and `dagrad.Graph`."),
    ("Written by :func:`~dagrad.io.save`.", "Written by `save`."),
    ("no markup", "no markup"),
])
def test_plain_turns_docstring_markup_into_terminal_text(markup, text):
    assert cli.plain(markup) == text
