#!/usr/bin/env python3
"""Refresh tests/fixtures/terraform/provider_schema.json: the provider schema subset terraform/ uses.

    python3 scripts/refresh_tf_schema.py                       # the packages pinned below
    python3 scripts/refresh_tf_schema.py --package google=21.1.0   # after moving versions.tf to ~> 8.0

`terraform validate` needs the providers from the Terraform registry, which tests cannot reach. The
full schema of each provider also ships on PyPI, inside the CDK Terrain prebuilt bindings
(`cdktn-provider-<name>`): its wheel holds a jsii assembly (`_jsii/*.jsii.tgz` -> `package/.jsii`)
generated from `terraform providers schema -json` of one provider release, named in the package's
README ("prebuilt bindings for hashicorp/google provider version 7.46.1"). In that assembly:

- a resource or data source is a class whose docs summary links its registry page and names its
  Terraform type (`Represents a {@link .../docs/resources/cloud_scheduler_job google_cloud_scheduler_job}`);
- its arguments are the properties of the `<Class>Config` struct; a property without `optional`
  is required; a nested block is a property whose summary is `<name> block.` and whose type is
  another struct (or a list of one), the block's own arguments being that struct's properties;
- each property's Terraform name is the registry anchor in its docs (`...#attribute_name Class#attribute_name`);
- attributes that can be referenced (computed ones included) are the getters of the class, and of
  `<Struct>OutputReference` for a nested block (camelCase names of snake_case attributes).

The script downloads each package with `pip download --no-deps` into a temp dir, checks that the
provider release it was generated from satisfies the constraint in terraform/versions.tf, and
writes the resources and data sources that terraform/*.tf declares, nothing else. It needs PyPI.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
TF = ROOT / "terraform"
OUT = ROOT / "tests" / "fixtures" / "terraform" / "provider_schema.json"

# The newest cdktn package of each provider whose provider release matches terraform/versions.tf.
# cdktn-provider-google 20.x tracks google ~> 7.0 (20.3.1: 7.46.1); 21.x tracks ~> 8.0.
PACKAGES = {"google": "20.3.1", "time": "14.0.2", "archive": "14.0.1"}

HCL_OPTIONS = hcl2.SerializationOptions(explicit_blocks=True, strip_string_quotes=True, with_comments=False)
ANCHOR = re.compile(r"#([a-z0-9_]+) [A-Za-z0-9]+#\1\}")
REPRESENTS = re.compile(r"docs/(resources|data-sources)/[a-z0-9_]+ ([a-z0-9_]+)\}")
# Getters that cdktn's own base classes add to every resource / block reader, not provider attributes.
CDK_MEMBERS = {"fqn", "internalValue", "creationStack", "terraformAttribute", "terraformResource"}
RELEASE = re.compile(r"prebuilt bindings for hashicorp/([a-z0-9-]+) provider version ([0-9.]+)")


def used_types() -> dict[str, set[str]]:
    """{"resource": {types}, "data": {types}} declared in terraform/*.tf."""
    used: dict[str, set[str]] = {"resource": set(), "data": set()}
    for path in sorted(TF.glob("*.tf")):
        with path.open(encoding="utf-8") as f:
            doc = hcl2.load(f, serialization_options=HCL_OPTIONS)
        for kind in used:
            for entry in doc.get(kind, []):
                used[kind].update(k for k in entry if k != "__is_block__")
    return used


def constraints() -> dict[str, str]:
    """{provider local name: version constraint} from terraform/versions.tf."""
    with (TF / "versions.tf").open(encoding="utf-8") as f:
        doc = hcl2.load(f, serialization_options=HCL_OPTIONS)
    out = {}
    for block in doc["terraform"]:
        for providers in block.get("required_providers", []):
            for name, spec in providers.items():
                if name != "__is_block__":
                    out[name] = spec["version"]
    return out


def satisfies(version: str, constraint: str) -> bool:
    """Terraform's `~> X.Y` (>= X.Y, < X+1) and `~> X.Y.Z` (>= X.Y.Z, < X.Y+1); other forms unsupported."""
    match = re.fullmatch(r"~>\s*([0-9]+(?:\.[0-9]+)+)", constraint.strip())
    if not match:
        raise SystemExit(f"versions.tf: cannot check constraint {constraint!r} (only ~> X.Y[.Z] is supported)")
    low = [int(p) for p in match[1].split(".")]
    have = [int(p) for p in version.split(".")]
    high = [*low[:-2], low[-2] + 1]
    return have >= low and have[: len(high)] < high


def load_assembly(provider: str, version: str, workdir: Path) -> tuple[dict[str, Any], str]:
    """The jsii assembly of cdktn-provider-<provider>==<version> and the provider release it describes."""
    package = f"cdktn-provider-{provider}=={version}"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(workdir), package],
        check=True,
    )
    (wheel,) = workdir.glob(f"cdktn_provider_{provider}-{version}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (tgz,) = [n for n in zf.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(zf.read(tgz))) as tf:
            member = tf.extractfile("package/.jsii")
            assert member is not None
            assembly: dict[str, Any] = json.load(member)
    release = RELEASE.search(assembly.get("readme", {}).get("markdown", ""))
    if not release or release[1] != provider:
        raise SystemExit(f"{package}: its README does not name the {provider} provider release it was built from")
    return assembly, release[2]


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def tf_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    anchor = ANCHOR.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
    return anchor[1] if anchor else snake(prop["name"])


def struct_of(prop_type: dict[str, Any]) -> tuple[str | None, bool]:
    """(struct fqn, is a list) of a property type, or (None, False) for a primitive/map/union."""
    if "fqn" in prop_type:
        return prop_type["fqn"], False
    collection = prop_type.get("collection")
    if collection and collection["kind"] == "array" and "fqn" in collection["elementtype"]:
        return collection["elementtype"]["fqn"], True
    union = prop_type.get("union")
    if union:  # `IResolvable | Struct[]` for list blocks
        for t in union["types"]:
            fqn, is_list = struct_of(t)
            if fqn and not fqn.startswith("cdktn."):
                return fqn, is_list
    return None, False


def getters(types: dict[str, Any], fqn: str) -> set[str]:
    """Terraform names of the readable attributes of a class (not the `...Input` twins)."""
    cls = types.get(fqn)
    if not cls:
        return set()
    out = set()
    for prop in cls.get("properties", []):
        if prop.get("static") or prop["name"].endswith("Input") or prop["name"] in CDK_MEMBERS:
            continue
        out.add(snake(prop["name"]))
    return out


def block_schema(types: dict[str, Any], struct_fqn: str, reader_fqn: str) -> dict[str, Any]:
    """Arguments (required or not), nested blocks and readable attributes of one block."""
    arguments: dict[str, dict[str, bool]] = {}
    blocks: dict[str, Any] = {}
    for prop in types[struct_fqn].get("properties", []):
        name = tf_name(prop)
        fqn, is_list = struct_of(prop["type"])
        required = not prop.get("optional", False)
        summary = prop.get("docs", {}).get("summary", "")
        if fqn and fqn in types and types[fqn].get("datatype") and summary.endswith(" block."):
            nested = block_schema(types, fqn, fqn + "OutputReference")
            blocks[name] = {"required": required, "list": is_list, **nested}
        else:
            if fqn and fqn in types and types[fqn].get("datatype"):
                print(f"  note: {struct_fqn}.{name} is an object-typed argument, not a block", file=sys.stderr)
            arguments[name] = {"required": required}
    readable = getters(types, reader_fqn) | set(arguments) | set(blocks)
    return {"arguments": arguments, "blocks": blocks, "attributes": sorted(readable)}


def extract(assembly: dict[str, Any], wanted: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    types: dict[str, Any] = assembly["types"]
    found: dict[str, dict[str, Any]] = {"resource": {}, "data": {}}
    for fqn, cls in types.items():
        if cls.get("kind") != "class":
            continue
        represents = REPRESENTS.search(cls.get("docs", {}).get("summary", ""))
        if not represents:
            continue
        kind = "resource" if represents[1] == "resources" else "data"
        tf_type = represents[2]
        if tf_type in wanted[kind]:
            schema = block_schema(types, fqn + "Config", fqn)
            # Meta-arguments (count, for_each, depends_on, provider, lifecycle) come from
            # cdktn.TerraformMetaArguments, not from the provider; the checker knows them.
            for meta in ("count", "for_each", "depends_on", "provider", "lifecycle", "connection", "provisioners"):
                schema["arguments"].pop(meta, None)
                schema["blocks"].pop(meta, None)
            found[kind][tf_type] = schema
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="PROVIDER=VERSION",
        help=f"cdktn-provider-PROVIDER version to read instead of the pinned one ({PACKAGES})",
    )
    args = parser.parse_args()
    packages = dict(PACKAGES)
    for item in args.package:
        provider, _, version = item.partition("=")
        packages[provider] = version

    wanted = used_types()
    wanted_constraints = constraints()
    result: dict[str, Any] = {"providers": {}, "resource": {}, "data": {}}
    with tempfile.TemporaryDirectory(prefix="tf-schema-") as tmp:
        for provider, version in sorted(packages.items()):
            if provider not in wanted_constraints:
                continue
            workdir = Path(tmp) / provider
            workdir.mkdir()
            assembly, release = load_assembly(provider, version, workdir)
            if not satisfies(release, wanted_constraints[provider]):
                raise SystemExit(
                    f"cdktn-provider-{provider}=={version} describes {provider} {release}, outside versions.tf's "
                    f"{wanted_constraints[provider]!r}: pass --package {provider}=<a version built from a matching "
                    f"release> (its README names the release) and update PACKAGES in this script"
                )
            mine = {k: {t for t in v if t.split("_", 1)[0] == provider} for k, v in wanted.items()}
            found = extract(assembly, mine)
            for kind in ("resource", "data"):
                missing = mine[kind] - set(found[kind])
                if missing:
                    raise SystemExit(f"{provider} {release} has no {kind} {sorted(missing)}")
                result[kind].update(found[kind])
            result["providers"][provider] = {
                "constraint": wanted_constraints[provider],
                "package": f"cdktn-provider-{provider}=={version}",
                "release": release,
            }
    unknown = {t for kind in ("resource", "data") for t in wanted[kind] if t not in result[kind]}
    if unknown:
        raise SystemExit(f"no package read for {sorted(unknown)}: add its provider to PACKAGES")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {sum(len(result[k]) for k in ('resource', 'data'))} types", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
