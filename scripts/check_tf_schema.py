#!/usr/bin/env python3
"""Check terraform/ against the providers' own schema, offline: what `terraform validate` would catch.

    python3 scripts/check_tf_schema.py [terraform-dir]      # exit 1 and one line per problem

The schema is tests/fixtures/terraform/provider_schema.json, the subset of the google, time and
archive provider schemas that terraform/ uses, extracted from the providers' published CDK Terrain
bindings by scripts/refresh_tf_schema.py (see there). For every `resource` and `data` block it checks:

- the type exists in its provider;
- every argument and nested block is one the provider defines at that place, written as an
  argument (`name = ...`) or as a block (`name { ... }`) as the schema says, blocks of at most
  one instance appear once, and `dynamic "name"` blocks name a real block;
- every required argument and required nested block is present, at every nesting level;

and for every expression anywhere in the module (resources, data sources, outputs, locals,
variable validations):

- `TYPE.NAME...` and `data.TYPE.NAME...` of these providers name a block declared in the module,
  and the attribute path after it exists (nested blocks are indexed, `block[0].attr`);
- `var.X` and `local.X` are declared.

Only the types of providers listed in the schema are checked; anything else is reported as unknown.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "fixtures" / "terraform" / "provider_schema.json"
HCL_OPTIONS = hcl2.SerializationOptions(explicit_blocks=True, strip_string_quotes=True, with_comments=False)

# Terraform's own meta-arguments of resource and data blocks (not in any provider schema).
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider"}
META_BLOCKS = {"lifecycle", "provisioner", "connection"}
REFERENCE = re.compile(
    r"(?<![\w.\]])(?P<data>data\.)?(?P<type>[a-z][a-z0-9]*_[a-z0-9_]+)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?P<rest>(?:\[[^\]]*\]|\.[A-Za-z_][\w-]*)*)"
)
STEP = re.compile(r"\[[^\]]*\]|\.[A-Za-z_][\w-]*")
VARIABLE = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")


@dataclass
class Module:
    """The parsed *.tf files of one directory."""

    files: dict[str, dict[str, Any]]
    blocks: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, tf_dir: Path) -> Module:
        files = {}
        for path in sorted(tf_dir.glob("*.tf")):
            with path.open(encoding="utf-8") as f:
                files[path.name] = dict(hcl2.load(f, serialization_options=HCL_OPTIONS))
        module = cls(files)
        for file, doc in files.items():
            for kind in ("resource", "data"):
                for entry in doc.get(kind, []):
                    for rtype, named in _items(entry):
                        for rname, body in _items(named):
                            module.blocks[(kind, rtype, rname)] = (file, body)
            for entry in doc.get("variable", []):
                module.variables.update(name for name, _ in _items(entry))
            for entry in doc.get("locals", []):
                module.locals.update(name for name, _ in _items(entry))
        return module


def _items(mapping: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    return ((k, v) for k, v in mapping.items() if k != "__is_block__")


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_body(body: dict[str, Any], schema: dict[str, Any], where: str, top: bool) -> list[str]:
    """Problems of one block body against its schema (arguments, nested blocks, required ones)."""
    problems = []
    arguments, blocks = schema["arguments"], schema["blocks"]
    known = set(arguments) | set(blocks)
    present: set[str] = set()
    for key, value in _items(body):
        if top and (key in META_ARGUMENTS or key in META_BLOCKS):
            continue
        if key == "dynamic":
            for entry in value:
                for name, dyn in _items(entry):
                    present.add(name)
                    if name not in blocks:
                        problems.append(f"{where}: dynamic {name!r}: no such block{_suggest(name, set(blocks))}")
                        continue
                    for content in dyn.get("content", []):
                        problems += check_body(content, blocks[name], f"{where}.{name}", top=False)
            continue
        present.add(key)
        if key in blocks:
            if not _is_block_list(value):
                problems.append(f"{where}: {key!r} is a block: write `{key} {{ ... }}`, not `{key} = ...`")
                continue
            if not blocks[key]["list"] and len(value) > 1:
                problems.append(f"{where}: {key!r} allows one block, found {len(value)}")
            for instance in value:
                problems += check_body(instance, blocks[key], f"{where}.{key}", top=False)
        elif key in arguments:
            if _is_block_list(value):
                problems.append(f"{where}: {key!r} is an argument: write `{key} = ...`, not a block")
        else:
            kind = "block" if _is_block_list(value) else "argument"
            problems.append(f"{where}: unsupported {kind} {key!r}{_suggest(key, known)}")
    for name, spec in sorted(arguments.items()):
        if spec["required"] and name not in present:
            problems.append(f"{where}: missing required argument {name!r}")
    for name, spec in sorted(blocks.items()):
        if spec["required"] and name not in present:
            problems.append(f"{where}: missing required block {name!r}")
    return problems


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _expressions(text: str) -> Iterator[str]:
    """The `${...}` spans of one python-hcl2 value (outermost, braces balanced)."""
    start = text.find("${")
    while start != -1:
        depth, i = 0, start + 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield text[start + 2 : i]
        start = text.find("${", i)


def check_reference(match: re.Match[str], module: Module, schema: dict[str, Any]) -> str | None:
    kind = "data" if match["data"] else "resource"
    rtype, rname = match["type"], match["name"]
    if rtype.split("_", 1)[0] not in schema["providers"]:
        return None
    address = f"{'data.' if kind == 'data' else ''}{rtype}.{rname}"
    types = schema[kind]
    if rtype not in types:
        return f"{address}: unknown {kind} type {rtype!r}{_suggest(rtype, set(types))}"
    if (kind, rtype, rname) not in module.blocks:
        declared = {n for k, t, n in module.blocks if (k, t) == (kind, rtype)}
        return f"{address}: no {kind} {rtype}.{rname} is declared{_suggest(rname, declared)}"
    steps = STEP.findall(match["rest"])
    while steps and steps[0].startswith("["):  # the instance key of a count / for_each block
        steps.pop(0)
    block = types[rtype]
    path = address
    while steps:
        step = steps.pop(0)
        if step.startswith("["):
            return f"{path}{step}: only nested blocks can be indexed here"
        attr = step[1:]
        if attr not in block["attributes"]:
            return f"{path}: {rtype} has no attribute {attr!r} here{_suggest(attr, set(block['attributes']))}"
        path += step
        if attr not in block["blocks"]:
            return None  # a primitive, map or list attribute: what follows indexes its value
        block = block["blocks"][attr]
        if not steps:
            return None
        if not steps[0].startswith("["):
            return f"{path}: {attr!r} is a block: index it first ({attr}[0]{steps[0]})"
        path += steps.pop(0)
    return None


def check(tf_dir: Path, schema: dict[str, Any]) -> list[str]:
    """Every problem the schema finds in the module at `tf_dir`, one line each."""
    module = Module.load(tf_dir)
    problems = []
    for (kind, rtype, rname), (file, body) in sorted(module.blocks.items()):
        where = f"{file}: {'data.' if kind == 'data' else ''}{rtype}.{rname}"
        if rtype.split("_", 1)[0] not in schema["providers"]:
            problems.append(f"{where}: no schema for provider {rtype.split('_', 1)[0]!r} (refresh_tf_schema.py)")
        elif rtype not in schema[kind]:
            problems.append(f"{where}: unknown {kind} type {rtype!r} (or refresh_tf_schema.py after adding it)")
        else:
            problems += check_body(body, schema[kind][rtype], where, top=True)
    for file, doc in module.files.items():
        for text in _strings(doc):
            for expr in _expressions(text):
                for match in REFERENCE.finditer(expr):
                    problem = check_reference(match, module, schema)
                    if problem:
                        problems.append(f"{file}: {problem}")
                for name in VARIABLE.findall(expr):
                    if name not in module.variables:
                        problems.append(f"{file}: var.{name} is not declared{_suggest(name, module.variables)}")
                for name in LOCAL.findall(expr):
                    if name not in module.locals:
                        problems.append(f"{file}: local.{name} is not declared{_suggest(name, module.locals)}")
    return sorted(set(problems))


def load_schema(path: Path = SCHEMA) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def main(argv: list[str]) -> int:
    tf_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "terraform"
    problems = check(tf_dir, load_schema())
    for problem in problems:
        print(problem)
    releases = ", ".join(f"{p} {v['release']}" for p, v in sorted(load_schema()["providers"].items()))
    print(f"check_tf_schema: {len(problems)} problem(s) in {tf_dir} against {releases}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
