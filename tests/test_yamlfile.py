"""mlci's one YAML loader: duplicate keys and alias bombs are refused, ordinary YAML reads as PyYAML does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from mlci_lib.errors import ConfigError
from mlci_lib.files import read_mapping, read_yaml

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _write(tmp_path: Path, text: str, name: str = "gate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("metrics:\n  accuracy: {min: 0.8}\n  accuracy: {max-drop: 0.01}\n", "accuracy", "lines 2 and 3"),
        ("on-inconclusive: fail\nmetrics: {}\non-inconclusive: pass\n", "on-inconclusive", "lines 1 and 3"),
        ("metrics: {accuracy: {min: 0.8, min: 0.9}}\n", "min", "lines 1 and 1"),
        ("a: 1\n'a': 2\n", "a", "lines 1 and 2"),
    ],
    ids=["nested", "top-level", "flow-same-line", "quoted-spelling"],
)
def test_duplicate_key_is_refused_with_file_key_and_line(
    tmp_path: Path, text: str, key: str, lines: str
) -> None:
    path = _write(tmp_path, text)
    assert isinstance(yaml.safe_load(text), dict)  # PyYAML alone: last one wins, silently
    with pytest.raises(ConfigError) as caught:
        read_yaml(path, what="gate file")
    message = str(caught.value)
    assert str(path) in message and repr(key) in message and lines in message
    assert "\n" not in message


def test_alias_bomb_is_refused_within_a_second(tmp_path: Path) -> None:
    path = _write(tmp_path, BOMB, "mlci.yaml")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="alias bomb"):
        read_mapping(path, what="pipeline file")
    assert time.perf_counter() - start < 1.0


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: &a\n  - 1\n  - *a\n")
    with pytest.raises(ConfigError, match="refers to the node that contains it"):
        read_yaml(path, what="suite")


def test_ordinary_yaml_with_aliases_and_merge_keys_reads_as_pyyaml(tmp_path: Path) -> None:
    text = (
        "defaults: &d {min: 0.8, required: true}\n"
        "metrics:\n  accuracy:\n    <<: *d\n    min: 0.9\n  f1: *d\n"
        "list: [1, 2.5, text, null, true]\n"
    )
    path = _write(tmp_path, text)
    assert read_yaml(path, what="gate file") == yaml.safe_load(text)


def test_many_shared_aliases_below_the_bound_are_accepted(tmp_path: Path) -> None:
    # 3 levels of 9: 729 expanded leaves, an honest (if odd) use of aliases.
    text = "\n".join(BOMB.splitlines()[:3]) + "\n"
    assert len(read_yaml(_write(tmp_path, text), what="suite")["c"]) == 9


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "metrics:\n  accuracy: {min: 0.8\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d"):
        read_yaml(path, what="gate file")


def test_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_bytes(b"\xef\xbb\xbfmetrics:\n  accuracy: {min: 0.8}\n")
    assert read_yaml(path, what="gate file") == {"metrics": {"accuracy": {"min": 0.8}}}


def test_mlflow_model_folder_with_an_alias_bomb_in_mlmodel_is_refused(tmp_path: Path) -> None:
    from mlci_lib.errors import ModelLoadError
    from mlci_lib.models import load_model

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  sklearn: {}\n" + BOMB)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="alias bomb"):
        load_model(folder)
    assert time.perf_counter() - start < 1.0


def test_duplicate_key_in_json_is_refused_with_its_lines(tmp_path: Path) -> None:
    from mlci_lib.errors import InputError
    from mlci_lib.files import read_json

    path = tmp_path / "metrics.json"
    path.write_text('{\n  "accuracy": 0.91,\n  "f1": 0.8,\n  "accuracy": 0.5\n}\n')
    with pytest.raises(InputError, match=r"key 'accuracy' appears twice in one object \(lines 2, 4\)"):
        read_json(path, what="metrics file")
    path.write_text('{"a": {"x": 1}, "b": {"x": 2}}')  # the same key in two objects is fine
    assert read_json(path, what="metrics file") == {"a": {"x": 1}, "b": {"x": 2}}
