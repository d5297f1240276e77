"""The JSON Schema of every file mlci writes, and reading such files back into typed results.

One home for each shape: the result dataclass. Its schema is derived from the dataclass' fields
and types (``Literal`` types become enumerations, nested results their own schemas, a ``float``
may be ``null`` because JSON has no NaN), shipped as ``mlci_lib/schemas/<schema>.schema.json`` for
users' own tools, and kept equal to the dataclass by a test (``python -m mlci_lib.result_schemas``
writes them again). Every JSON document mlci writes with a ``schema`` of its own is validated
against it before it is written (see :func:`mlci_lib.files.write_json_atomic`): a document that
does not match its schema is a bug, and is never written for a later step to trust. Readers use
:func:`from_dict`, which validates first and then builds the dataclass.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import json
import math
import pkgutil
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from mlci_lib.errors import InputError
from mlci_lib.results import Result

DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: Documents mlci writes that are not result dataclasses; their schemas are written by hand.
HAND_WRITTEN = ("mlci.error", "mlci.model")
#: Where every schema kind is shipped.
SCHEMA_FOLDER = "schemas"

R = TypeVar("R", bound=Result)


class SchemaError(InputError):
    """A document does not match the schema it names."""

    title = "mlci schema error"


# --- generation ------------------------------------------------------------------------------


def result_classes() -> dict[str, type[Result]]:
    """Every result dataclass in mlci_lib, by schema name (imports every module once)."""
    import mlci_lib

    for module in pkgutil.walk_packages(mlci_lib.__path__, "mlci_lib."):
        if (
            module.name.startswith(("mlci_lib.cli", "mlci_lib.templates"))
            or module.name == "mlci_lib.__main__"
        ):
            continue
        importlib.import_module(module.name)
    found: dict[str, type[Result]] = {}
    pending: list[type[Result]] = list(Result.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.SCHEMA == Result.SCHEMA:
            continue
        other = found.get(cls.SCHEMA)
        if other is not None and other is not cls:
            raise TypeError(f"{cls.__qualname__} and {other.__qualname__} both claim schema {cls.SCHEMA}")
        found[cls.SCHEMA] = cls
    return dict(sorted(found.items()))


def schema_of(cls: type[Result]) -> dict[str, Any]:
    """The JSON Schema of ``cls.to_dict()`` documents."""
    defs: dict[str, Any] = {}
    body = _object_schema(cls, defs, top=True)
    schema = {
        "$schema": DRAFT,
        "$id": f"https://mlci.dev/schemas/{cls.SCHEMA}.schema.json",
        "title": cls.SCHEMA,
        "description": _description(cls),
        **body,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def _description(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith(cls.__name__ + "("):  # the dataclass' generated signature
        return cls.__name__
    return " ".join(doc.split("\n\n")[0].split())


def _hints(cls: type) -> dict[str, Any]:
    # Each class' annotations resolve in its own module (the default); the result classes keep
    # their field types importable at run time for this reason.
    return typing.get_type_hints(cls)


def _object_schema(cls: type, defs: dict[str, Any], *, top: bool = False) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    if issubclass(cls, Result):
        properties["schema"] = {"const": cls.SCHEMA}
        properties["schema_version"] = {"const": cls.SCHEMA_VERSION}
    for field in dataclasses.fields(cls):
        properties[field.name] = _type_schema(hints[field.name], defs)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return {}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(arg, defs) for arg in args]
        return {"anyOf": options}
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        # Non-finite floats are written as null (see results.to_jsonable).
        return {"type": ["number", "null"]}
    if hint is str:
        return {"type": "string"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        name = hint.__qualname__
        if name not in defs:
            defs[name] = {}  # a placeholder breaks recursion
            defs[name] = _object_schema(hint, defs)
        return {"$ref": f"#/$defs/{name}"}
    if origin in (tuple,) and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is tuple and args:
        return {
            "type": "array",
            "prefixItems": [_type_schema(arg, defs) for arg in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in (list, set, frozenset, Sequence, tuple) or hint in (list, tuple):
        items = _type_schema(args[0], defs) if args else {}
        return {"type": "array", "items": items}
    if origin in (dict, Mapping) or hint is dict:
        values = _type_schema(args[1], defs) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": values}
    if isinstance(hint, type) and issubclass(hint, Path):
        return {"type": "string"}
    raise TypeError(f"no JSON Schema for the type {hint!r}")


def generated_schemas() -> dict[str, dict[str, Any]]:
    """Every result class' schema, by schema name."""
    return {name: schema_of(cls) for name, cls in result_classes().items()}


def schema_text(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write every generated schema into ``folder`` (the package's ``schemas/`` when releasing)."""
    written = []
    for name, schema in generated_schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


# --- validation ------------------------------------------------------------------------------


def shipped_names() -> list[str]:
    folder = resources.files("mlci_lib").joinpath(SCHEMA_FOLDER)
    names = []
    for entry in folder.iterdir():
        if (
            entry.name.startswith("mlci.")
            and entry.name.endswith(".schema.json")
            and entry.name != "mlci.schema.json"
        ):
            names.append(entry.name[: -len(".schema.json")])
    return sorted(names)


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema

    entry = resources.files("mlci_lib").joinpath(f"{SCHEMA_FOLDER}/{name}.schema.json")
    try:
        schema = json.loads(entry.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return jsonschema.Draft202012Validator(schema)


def problems(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``document`` against the schema it names (empty when it matches)."""
    name = document.get("schema")
    if not isinstance(name, str) or not name.startswith("mlci."):
        return ["it names no mlci schema (no 'schema' key)"]
    validator = _validator(name)
    if validator is None:
        return [
            f"mlci ships no schema named {name!r} "
            "(for a new result kind, python -m mlci_lib.result_schemas writes it)"
        ]
    # A wrong value before a missing field: "passed must be true/false" says more than the first
    # of the fields a forged document left out.
    errors = sorted(
        validator.iter_errors(document),
        key=lambda e: (e.validator == "required", [str(p) for p in e.absolute_path]),
    )
    return [_said(error) for error in errors]


def _path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_JSON_TYPES = {"boolean": "true/false", "integer": "a whole number", "number": "a number", "string": "text"}


def _said(error: Any) -> str:
    """One validation error in the words of the field it is about: "rules[1].outcome must be ..."."""
    where = _path(list(error.absolute_path))
    found = _shown(error.instance)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{_path([*error.absolute_path, missing])} is missing"
    if kind == "additionalProperties":
        return f"{where or 'the document'} has a field mlci does not write ({error.message})"
    if kind == "enum":
        choices = ", ".join(str(v) for v in error.validator_value)
        return f"{where} must be one of {choices}, found {found}"
    if kind == "const":
        return f"{where} must be {error.validator_value!r}, found {found}"
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        names = " or ".join(
            _JSON_TYPES.get(w, "a list" if w == "array" else "a mapping" if w == "object" else w)
            for w in wanted
            if w != "null"
        )
        return f"{where} must be {names}, found {found}"
    if kind in ("minItems", "maxItems", "prefixItems"):
        return f"{where} must be [low, high], found {found}"
    if kind == "anyOf" and error.context:
        # "a number or null": say what the value should have been, not that no option matched.
        from jsonschema.exceptions import best_match

        telling = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        return _said(best_match(telling or error.context))
    if kind == "anyOf":
        return f"{where} has the wrong shape, found {found}"
    return f"{where or 'the document'}: {error.message}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check(document: Mapping[str, Any], *, what: str) -> None:
    """Raise :class:`SchemaError` naming ``what`` and the first problem, unless the document matches."""
    found = problems(document)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SchemaError(
            f"{what} does not match its schema {document.get('schema')!r}: {found[0][:300]}{more}",
            hint="write it with the mlci version that reads it; files are never to be edited by hand",
        )


def names_a_schema(document: object) -> bool:
    """Whether ``document`` claims to be one of mlci's documents."""
    return isinstance(document, Mapping) and str(document.get("schema", "")).startswith("mlci.")


# --- reading back ----------------------------------------------------------------------------


def from_dict(cls: type[R], document: Mapping[str, Any], *, what: str = "the document") -> R:
    """``cls`` built from a document ``cls.to_dict()`` wrote, after validating it."""
    if document.get("schema") != cls.SCHEMA:
        raise SchemaError(
            f"{what} is a {document.get('schema')!r} document, not {cls.SCHEMA!r}",
            hint="give the file the command that reads it expects",
        )
    check(document, what=what)
    return typing.cast(R, _build(cls, document))


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    hints = _hints(cls)
    values = {field.name: _value(hints[field.name], data[field.name]) for field in dataclasses.fields(cls)}
    return cls(**values)


def _value(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        if hint is float:
            return math.nan
        if origin in (typing.Union, types.UnionType) and type(None) not in args and float in args:
            return math.nan
        return None
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None):
                continue
            if _matches(arg, value):
                return _value(arg, value)
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], item) for item in value)
        if args:
            return tuple(_value(arg, item) for arg, item in zip(args, value, strict=True))
        return tuple(value)
    if origin in (list, Sequence):
        return [_value(args[0], item) for item in value] if args else list(value)
    if origin in (dict, Mapping):
        return {key: _value(args[1], item) for key, item in value.items()} if len(args) == 2 else dict(value)
    if hint is float:
        return float(value)
    if isinstance(hint, type) and issubclass(hint, Path):
        return Path(value)
    return value


def _matches(hint: Any, value: Any) -> bool:
    origin = typing.get_origin(hint) or hint
    if hint is Any:
        return True
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, Mapping)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list, Sequence):
        return isinstance(value, list)
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    if isinstance(origin, type):
        return isinstance(value, origin)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlci_lib.result_schemas [FOLDER]``: write the schemas (the package's by default)."""
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0]) if args else Path(__file__).parent / SCHEMA_FOLDER
    for path in write_schemas(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
