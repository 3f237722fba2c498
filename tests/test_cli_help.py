"""The command line documents itself: every option of every subcommand has a help text, and
`relax` prints its summary as JSON."""

import argparse
import json

from symmcd import cli


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of the parser and every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommands(sub, (*path, name))


def test_every_option_of_every_subcommand_has_help():
    missing = []
    for path, parser in subcommands(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                missing.append(
                    f"symmcd {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
                )
    assert not missing, missing


def test_help_states_the_defaults_of_numeric_options():
    parser = cli.build_parser()
    for path, sub in subcommands(parser):
        for action in sub._actions:
            numeric = action.type in (int, float) and action.default not in (None, 0)
            if numeric and action.option_strings:
                text = action.help % {"default": action.default} if action.help else ""
                stated = (str(action.default), f"{action.default:g}")
                assert any(value in text for value in stated), (path, action.option_strings, text)
        sub.format_help()  # every %(default)s expands


def test_relax_prints_its_summary_as_json(tmp_path, capsys, monkeypatch):
    import symmcd.evaluation

    summary = {"n": 2, "relaxed": 0, "failed": 2, "converged": 0, "mean_steps": float("nan")}
    monkeypatch.setattr(symmcd.evaluation, "relax_dir", lambda *args, **kwargs: summary)
    assert cli.main(["relax", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {**summary, "mean_steps": None}


def test_sample_options_are_the_sampling_config_fields_with_its_defaults():
    """Issue #39: `symmcd sample` has an option for every SamplingConfig field, and each option's
    default is the field's."""
    from dataclasses import fields

    from symmcd.cli import build_parser, sampling_config
    from symmcd.sampling.config import SamplingConfig

    args = build_parser().parse_args(["sample", "--n", "1", "--out", "unused"])
    defaults = SamplingConfig()
    for field in fields(SamplingConfig):
        assert hasattr(args, field.name), f"SamplingConfig.{field.name} has no sample option"
        assert getattr(args, field.name) == getattr(defaults, field.name), field.name
    assert sampling_config(args) == defaults


def test_preset_sets_its_values_under_the_options_given():
    """`--preset published` is the published protocol; an option on the command line wins over
    the preset even when it equals the option's default."""
    from symmcd.cli import build_parser, given_options, sampling_config
    from symmcd.sampling.config import PRESETS, SamplingConfig

    def config(*extra):
        argv = ["sample", "--n", "1", "--out", "unused", *extra]
        return sampling_config(build_parser().parse_args(argv), given_options(argv))

    published = config("--preset", "published")
    assert published == SamplingConfig.preset("published")
    for name, value in PRESETS["published"].items():
        assert getattr(published, name) == value
    assert published != SamplingConfig()
    overridden = config("--preset", "published", "--max-attempts", "10", "--repulsion", "0.5")
    assert (overridden.max_attempts, overridden.repulsion) == (10, 0.5)
    assert overridden.element_decoding == PRESETS["published"]["element_decoding"]
    assert config("--max-attempts", "3") == SamplingConfig(max_attempts=3)


def test_unknown_preset_is_a_one_line_error():
    import pytest

    from symmcd.errors import InputError
    from symmcd.sampling.config import SamplingConfig

    with pytest.raises(InputError, match="preset"):
        SamplingConfig.preset("paper")


def test_scripts_take_sampling_options_from_one_place_with_their_own_defaults():
    import argparse

    from symmcd.cli import add_sampling_options
    from symmcd.sampling.config import PRESETS

    parser = argparse.ArgumentParser()
    add_sampling_options(parser, ["max_attempts", "repulsion", "targets"], PRESETS["published"])
    args = parser.parse_args([])
    assert (args.max_attempts, args.repulsion, args.targets) == (1, 0.0, None)
    args = parser.parse_args(["--max-attempts", "4", "--target", "band_gap=2"])
    assert (args.max_attempts, args.targets) == (4, ["band_gap=2"])
    assert not hasattr(args, "element_decoding")  # only the options asked for
