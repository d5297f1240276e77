"""MkDocs hooks: the reference pages are generated, never written by hand.

A page holding ``<!-- generated:cli -->``, ``<!-- generated:actions -->`` or
``<!-- generated:schemas -->`` gets, in its place, the reference built from the CLI's own parser,
the ``action.yml`` files, or the JSON Schemas shipped in ``mlci_lib/schemas/``; so the reference
cannot drift from the code. Links to files of the repository outside ``docs/`` point at the
repository, and the schemas are published beside the site.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REPO_BLOB = "https://github.com/mlci-dev/mlci/blob/main/"
_REPO_LINK = re.compile(
    r"\]\(((?:\.\./)*)((?:actions|templates|examples|bench|scripts|mlci_lib|tests)/[^)#\s]*|action\.yml|pyproject\.toml|README\.md)(#[^)]*)?\)"
)


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- CLI -------------------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def cli_reference() -> str:
    from mlci_lib.cli import build_parser

    lines = []
    for name, parser in _commands(build_parser(), "mlci"):
        has_sub = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if name != "mlci" and has_sub:
            continue
        title = "Global options" if name == "mlci" else f"`{name}`"
        lines += [f"### {title}", ""]
        description = parser.description or ""
        if description and name != "mlci":
            lines += [" ".join(description.split()), ""]
        usage = " ".join(parser.format_usage().replace("usage:", "").split())
        lines += ["```", usage, "```", ""]
        formatter = parser._get_formatter()
        rows = []
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.dest.upper()}`"
            text = formatter._expand_help(action) if action.help else ""
            rows.append(f"| {flags} | {_cell(text)} |")
        if rows:
            lines += ["| option | meaning |", "| --- | --- |", *rows, ""]
    return "\n".join(lines)


# --- actions ---------------------------------------------------------------------------------


def actions_reference() -> str:
    files = [ROOT / "action.yml", *sorted((ROOT / "actions").glob("*/action.yml"))]
    lines = []
    for file in files:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
        where = "mlci-dev/mlci" if file.parent == ROOT else f"mlci-dev/mlci/actions/{file.parent.name}"
        lines += [f"### `{where}@v1`", "", _cell(spec.get("description", "")), ""]
        inputs = spec.get("inputs") or {}
        if inputs:
            lines += ["| input | required | default | meaning |", "| --- | --- | --- | --- |"]
            for name, item in inputs.items():
                item = item or {}
                default = item.get("default", "")
                shown = f"`{_cell(default)}`" if default not in ("", None) else ""
                required = "yes" if item.get("required") else ""
                lines.append(f"| `{name}` | {required} | {shown} | {_cell(item.get('description', ''))} |")
            lines.append("")
        outputs = spec.get("outputs") or {}
        if outputs:
            lines += ["| output | meaning |", "| --- | --- |"]
            for name, item in outputs.items():
                lines.append(f"| `{name}` | {_cell((item or {}).get('description', ''))} |")
            lines.append("")
    return "\n".join(lines)


# --- schemas ---------------------------------------------------------------------------------


def _type_of(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type_of(schema['additionalProperties'])}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def schemas_reference() -> str:
    lines = []
    for file in sorted((ROOT / "mlci_lib" / "schemas").glob("mlci.*.schema.json")):
        schema = json.loads(file.read_text(encoding="utf-8"))
        lines += [
            f"### `{schema['title']}`",
            "",
            _cell(schema.get("description", "")),
            "",
            f"[JSON Schema](../schemas/{file.name})",
            "",
            "| field | type |",
            "| --- | --- |",
        ]
        for name, item in schema.get("properties", {}).items():
            lines.append(f"| `{name}` | {_cell(_type_of(item))} |")
        lines.append("")
    return "\n".join(lines)


_GENERATED = {"cli": cli_reference, "actions": actions_reference, "schemas": schemas_reference}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for name, build in _GENERATED.items():
        marker = f"<!-- generated:{name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, build())
    return _REPO_LINK.sub(lambda m: f"]({REPO_BLOB}{m.group(2)}{m.group(3) or ''})", markdown)


def on_files(files: Any, config: Any) -> Any:
    # The shipped schemas are published with the site, at schemas/<name>.schema.json.
    from mkdocs.structure.files import File

    for path in sorted((ROOT / "mlci_lib" / "schemas").glob("*.json")):
        files.append(File.generated(config, f"schemas/{path.name}", abs_src_path=str(path)))
    return files
