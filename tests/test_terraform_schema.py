"""terraform/ against the real provider schemas (scripts/check_tf_schema.py), and seeded mistakes it must catch.

The schema subset in tests/fixtures/terraform/provider_schema.json comes from the providers' own
published schema (scripts/refresh_tf_schema.py reads it from the cdktn-provider-* wheels), so an
argument the provider does not have, a missing required one or a wrong attribute in a reference
fails here as it would fail `terraform validate`, which cannot run offline.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "terraform"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


checker = _load("check_tf_schema")
refresher = _load("refresh_tf_schema")
SCHEMA = checker.load_schema()


def test_terraform_module_matches_the_provider_schemas() -> None:
    """Every resource, argument, block, required argument and reference in terraform/ checks out."""
    assert checker.check(TF, SCHEMA) == []


def test_schema_subset_covers_the_module_and_its_version_constraints() -> None:
    """The fixture has every type terraform/ declares, read from releases inside versions.tf's constraints."""
    used = refresher.used_types()
    assert used["resource"] and used["data"]
    # Exactly those: the fixture is the subset terraform/ uses, refreshed with the module.
    assert used["resource"] == set(SCHEMA["resource"]), "run python3 scripts/refresh_tf_schema.py"
    assert used["data"] == set(SCHEMA["data"]), "run python3 scripts/refresh_tf_schema.py"
    constraints = refresher.constraints()
    for provider, meta in SCHEMA["providers"].items():
        assert meta["constraint"] == constraints[provider], f"{provider}: versions.tf changed; refresh the schema"
        assert refresher.satisfies(meta["release"], constraints[provider]), provider


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("7.46.1", "~> 7.0", True),
        ("8.0.0", "~> 7.0", False),
        ("6.9.0", "~> 7.0", False),
        ("0.14.2", "~> 0.12", True),
        ("1.0.0", "~> 0.12", False),
        ("2.7.3", "~> 2.7.1", True),
        ("2.8.0", "~> 2.7.1", False),
    ],
)
def test_pessimistic_constraint(version: str, constraint: str, ok: bool) -> None:
    """`~> X.Y` allows X.* from X.Y; `~> X.Y.Z` allows X.Y.* from X.Y.Z."""
    assert refresher.satisfies(version, constraint) is ok


# (file, text in it, replacement, the problem the checker must report)
SEEDED = {
    "misspelled argument": (
        "scheduler.tf",
        "  schedule         = var.schedule",
        "  schedul          = var.schedule",
        "scheduler.tf: google_cloud_scheduler_job.hourly: unsupported argument 'schedul' (did you mean 'schedule'?)",
    ),
    "missing required argument": (
        "iam.tf",
        '  account_id   = "${var.name_prefix}-build"\n',
        "",
        "iam.tf: google_service_account.build: missing required argument 'account_id'",
    ),
    "missing required argument in a nested block": (
        "scheduler.tf",
        "    uri         = google_cloudfunctions2_function.fn.service_config[0].uri\n",
        "",
        "google_cloud_scheduler_job.hourly.http_target: missing required argument 'uri'",
    ),
    "unknown block": (
        "function.tf",
        "    automatic_update_policy {}",
        "    automatic_update_policy {}\n    rebuild_policy {}",
        "google_cloudfunctions2_function.fn.build_config: unsupported block 'rebuild_policy'",
    ),
    "block written as an argument": (
        "scheduler.tf",
        "  retry_config {",
        "  retry_config = {",
        "google_cloud_scheduler_job.hourly: 'retry_config' is a block: write `retry_config { ... }`",
    ),
    "bad attribute in a reference": (
        "scheduler.tf",
        "service_account_email = google_service_account.invoker.email",
        "service_account_email = google_service_account.invoker.emial",
        "scheduler.tf: google_service_account.invoker: google_service_account has no attribute 'emial' here",
    ),
    "reference to an undeclared resource": (
        "scheduler.tf",
        '  member   = "serviceAccount:${google_service_account.invoker.email}"',
        '  member   = "serviceAccount:${google_service_account.invokr.email}"',
        "no resource google_service_account.invokr is declared (did you mean 'invoker'?)",
    ),
    "bad attribute inside a nested block reference": (
        "scheduler.tf",
        "  name     = google_cloudfunctions2_function.fn.service_config[0].service",
        "  name     = google_cloudfunctions2_function.fn.service_config[0].service_name",
        "has no attribute 'service_name' here",
    ),
    "nested block referenced without an index": (
        "scheduler.tf",
        "  name     = google_cloudfunctions2_function.fn.service_config[0].service",
        "  name     = google_cloudfunctions2_function.fn.service_config.service",
        "'service_config' is a block: index it first",
    ),
    "undeclared variable": (
        "scheduler.tf",
        "  time_zone        = var.time_zone",
        "  time_zone        = var.timezone",
        "scheduler.tf: var.timezone is not declared (did you mean 'time_zone'?)",
    ),
    "unknown resource type": (
        "scheduler.tf",
        'resource "google_cloud_scheduler_job" "hourly"',
        'resource "google_cloud_scheduler_jobs" "hourly"',
        "google_cloud_scheduler_jobs.hourly: unknown resource type 'google_cloud_scheduler_jobs'",
    ),
}


@pytest.mark.parametrize("mistake", sorted(SEEDED))
def test_checker_catches_a_seeded_mistake(mistake: str, tmp_path: Path) -> None:
    """Each seeded mistake in a copy of terraform/ is reported, naming the place and the fix."""
    file, old, new, expected = SEEDED[mistake]
    module = tmp_path / "terraform"
    shutil.copytree(TF, module, ignore=shutil.ignore_patterns(".terraform", ".build"))
    text = (module / file).read_text(encoding="utf-8")
    assert text.count(old) == 1, f"seed {mistake!r}: {old!r} must occur once in {file}"
    (module / file).write_text(text.replace(old, new), encoding="utf-8")
    with (module / file).open(encoding="utf-8") as f:
        hcl2.load(f)  # the seeded file still parses: the mistake is one of schema, not syntax
    problems = checker.check(module, SCHEMA)
    assert any(expected in p for p in problems), f"{mistake}: not reported; got {problems}"


def test_unknown_dynamic_block_and_meta_arguments(tmp_path: Path) -> None:
    """`dynamic` must name a real block; count/for_each/depends_on/lifecycle are always allowed."""
    (tmp_path / "main.tf").write_text(
        """
variable "n" {
  type = number
}

resource "google_service_account" "a" {
  count      = var.n
  account_id = "a"
  depends_on = [google_service_account.b]
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_service_account" "b" {
  account_id = "b-${google_service_account.a[0].email}"
  dynamic "nope" {
    for_each = [1]
    content {}
  }
}
""",
        encoding="utf-8",
    )
    assert checker.check(tmp_path, SCHEMA) == ["main.tf: google_service_account.b: dynamic 'nope': no such block"]
