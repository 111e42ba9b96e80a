"""The Terraform root module in terraform/ against the code's configuration contract (config.py).

Static checks parse the HCL with python-hcl2. Checks that need Terraform's own evaluation run
`terraform console` on a copy of variables.tf + locals.tf (locals.tf references variables only, so
no provider, `init` or network is needed); they are skipped only where the terraform binary is
absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "terraform"
sys.path.insert(0, str(REPO))

import config  # noqa: E402  (needs the repo root on sys.path)

HCL_OPTIONS = hcl2.SerializationOptions(explicit_blocks=False, strip_string_quotes=True, with_comments=False)
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform binary not on PATH")

RUNTIME_SA = "serviceAccount:${google_service_account.runtime.email}"
INVOKER_SA = "serviceAccount:${google_service_account.invoker.email}"
KEYED_PROVIDERS = ("openai", "anthropic", "xai")
# Variables whose input the issue asks to validate (thresholds, Slack and the export table are
# checked inside `budgets` / `slack_webhook_secret_id`).
VALIDATED = {
    "budgets",
    "name_prefix",
    "project_id",
    "region",
    "runtime",
    "schedule",
    "slack_destinations",
    "slack_webhook_secret_id",
}


# --- parsing helpers ---------------------------------------------------------------------------


@cache
def _parsed(name: str) -> dict[str, Any]:
    with (TF / name).open(encoding="utf-8") as f:
        return dict(hcl2.load(f, serialization_options=HCL_OPTIONS))


def _tf_files() -> list[str]:
    return sorted(p.name for p in TF.glob("*.tf"))


def _blocks(kind: str) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(type, name, body, file) of every `resource` or `data` block."""
    for file in _tf_files():
        for entry in _parsed(file).get(kind, []):
            for rtype, named in entry.items():
                for rname, body in named.items():
                    yield rtype, rname, body, file


def _resource(rtype: str, rname: str) -> dict[str, Any]:
    for t, n, body, _ in _blocks("resource"):
        if (t, n) == (rtype, rname):
            return body
    raise AssertionError(f"terraform/ has no resource {rtype}.{rname}")


def _variables() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for entry in _parsed("variables.tf")["variable"]:
        out.extend(entry.items())
    return out


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in _parsed("locals.tf")["locals"]:
        merged.update(entry)
    return merged


def _function_env() -> dict[str, str]:
    """The function's fixed environment (function.tf's local.function_env); SLACK_WEBHOOK_SECRET is
    added by local.slack_webhook_env only when there are no slack_destinations."""
    service = _resource("google_cloudfunctions2_function", "fn")["service_config"][0]
    assert service["environment_variables"] == "${merge(local.function_env, local.slack_webhook_env)}"
    merged: dict[str, str] = {}
    for entry in _parsed("function.tf")["locals"]:
        merged.update(entry.get("function_env", {}))
    return merged


def _example_tfvars() -> dict[str, Any]:
    return dict(hcl2.loads(_example_tfvars_text(), serialization_options=HCL_OPTIONS))


# --- terraform console -------------------------------------------------------------------------


def _console(tmp_path: Path, tfvars: str, expr: str) -> tuple[str, str]:
    """Evaluate `expr` against variables.tf + locals.tf and `tfvars`; returns (stdout, stderr)."""
    module = tmp_path / "terraform"
    module.mkdir(parents=True, exist_ok=True)
    for name in ("variables.tf", "locals.tf"):
        shutil.copy(TF / name, module / name)
    (module / "terraform.tfvars").write_text(tfvars, encoding="utf-8")
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    proc = subprocess.run(
        [str(TERRAFORM), "console", "-no-color"],
        cwd=module,
        input=expr + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return proc.stdout, proc.stderr


def _console_json(tmp_path: Path, tfvars: str, expr: str) -> Any:
    stdout, stderr = _console(tmp_path, tfvars, f"jsonencode({expr})")
    assert "Error:" not in stderr, stderr
    lines = [line for line in stdout.splitlines() if line.startswith('"')]
    assert lines, f"no value printed:\n{stdout}\n{stderr}"
    return json.loads(json.loads(lines[-1]))


def _example_tfvars_text() -> str:
    return (TF / "terraform.tfvars.example").read_text(encoding="utf-8")


# --- the mapping in locals.tf, restated in Python ---------------------------------------------


def _budget_document(tfvars: dict[str, Any], name_prefix: str = "llm-budget") -> dict[str, Any]:
    """locals.budget_document for parsed tfvars: defaults of variables.tf, key_secret, a webhook_secret
    per slack_destinations entry, no nulls."""
    budgets, project = tfvars["budgets"], tfvars["project_id"]
    providers = {}
    for name, p in budgets["providers"].items():
        accounts = []
        for raw in p.get("accounts", [{}]):
            account = {"label": "default", **raw}
            if name in KEYED_PROVIDERS:
                kind = "management-key" if name == "xai" else "admin-key"
                secret_id = f"{name_prefix}-{name}-{account['label']}-{kind}"
                account["key_secret"] = f"projects/{project}/secrets/{secret_id}/versions/latest"
            accounts.append(account)
        providers[name] = {**p, "accounts": accounts}
    document = {**budgets, "providers": providers}
    if tfvars.get("slack_destinations"):
        document["destinations"] = {
            name: {"webhook_secret": f"projects/{project}/secrets/{name_prefix}-slack-{name}-webhook/versions/latest"}
            for name in tfvars["slack_destinations"]
        }
    return _without_nulls(document)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- the function's environment ----------------------------------------------------------------


def test_function_sets_exactly_the_cloud_env_vars() -> None:
    """The function sets every name in config.CLOUD_ENV_VARS and nothing else (SLACK_WEBHOOK_SECRET
    through local.slack_webhook_env, tests/test_terraform_budgets.py)."""
    assert "SLACK_WEBHOOK_SECRET" not in _function_env()
    assert sorted({*_function_env(), "SLACK_WEBHOOK_SECRET"}) == sorted(config.CLOUD_ENV_VARS)


def test_function_env_values_match_the_contract() -> None:
    """STATE_BACKEND is gcs, secrets are version names, BigQuery jobs run in the function's project."""
    env = _function_env()
    assert env["STATE_BACKEND"] == "gcs"
    assert env["STATE_BUCKET"] == "${google_storage_bucket.state.name}"
    assert env["BIGQUERY_JOB_PROJECT"] == "${var.project_id}"
    assert env["BUDGET_CONFIG"] == "${jsonencode(local.budget_document)}"
    assert _locals()["slack_webhook_env"] == (
        "${length(var.slack_destinations) > 0 ? {} : {SLACK_WEBHOOK_SECRET = "
        '"projects/${var.project_id}/secrets/${local.slack_secret_id}/versions/latest"}}'
    )
    defaults = {name: body.get("default") for name, body in _variables()}
    for provider, env_name in config.BASE_URL_ENV.items():
        var = env[env_name].removeprefix("${var.").removesuffix("}")
        assert defaults[var] == config.DEFAULT_BASE_URLS[provider], env_name


def _deployed_python_files() -> list[Path]:
    packages = _locals()["source_packages"]
    files = [p for p in REPO.glob("*.py") if p.name != "conftest.py"]
    for package in packages:
        files.extend((REPO / package).rglob("*.py"))
    return sorted(files)


ENV_READ = re.compile(r"""(?:environ|env|getenv)\s*(?:\.get\(|\[|\()\s*["']([A-Z_][A-Z0-9_]*)["']""")


def test_deployed_code_reads_only_declared_env_vars() -> None:
    """Every env var literal the deployed source reads is in CLOUD_ENV_VARS or LOCAL_ENV_VARS."""
    read: dict[str, set[str]] = {}
    for path in _deployed_python_files():
        for name in ENV_READ.findall(path.read_text(encoding="utf-8")):
            read.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert "BUDGET_CONFIG" in read, "the scan found none of config.py's reads; is the pattern broken?"
    declared = set(config.CLOUD_ENV_VARS) | set(config.LOCAL_ENV_VARS)
    undeclared = {name: sorted(files) for name, files in read.items() if name not in declared}
    assert not undeclared, f"read but not declared in config.py: {undeclared}"
    # names read through a table rather than a literal
    assert set(config.BASE_URL_ENV.values()) <= set(config.CLOUD_ENV_VARS)
    assert not set(config.CLOUD_ENV_VARS) & set(config.LOCAL_ENV_VARS)


# --- secrets -----------------------------------------------------------------------------------


def test_each_secret_has_a_runtime_accessor_binding_on_itself() -> None:
    """Every secret container has a secretAccessor binding for the runtime SA on that secret."""
    secrets = [(n, b) for t, n, b, _ in _blocks("resource") if t == "google_secret_manager_secret"]
    bindings = [b for t, _, b, _ in _blocks("resource") if t == "google_secret_manager_secret_iam_member"]
    assert {n for n, _ in secrets} == {"provider_key", "slack_webhook"}
    for name, body in secrets:
        assert body["replication"] == [{"auto": [{}]}], name
        ref = f"google_secret_manager_secret.{name}"
        bound = [
            b
            for b in bindings
            if b["secret_id"] == f"${{{ref}.secret_id}}"
            or (b.get("for_each") == f"${{{ref}}}" and b["secret_id"] == "${each.value.secret_id}")
        ]
        assert len(bound) == 1, f"{ref}: expected one accessor binding, found {len(bound)}"
        assert bound[0]["role"] == "roles/secretmanager.secretAccessor"
        assert bound[0]["member"] == RUNTIME_SA
    assert _resource("google_secret_manager_secret", "provider_key")["for_each"] == "${local.keyed_accounts}"
    assert _resource("google_secret_manager_secret", "slack_webhook")["for_each"] == "${local.slack_secrets}"


def test_no_secret_values_or_secret_env_vars_in_terraform() -> None:
    """No secret version (value) is managed by Terraform and no secret is mounted as an env var."""
    types = {t for t, *_ in _blocks("resource")}
    assert "google_secret_manager_secret_version" not in types
    service = _resource("google_cloudfunctions2_function", "fn")["service_config"][0]
    assert "secret_environment_variables" not in service
    assert "secret_volumes" not in service


def test_project_level_grants_are_the_expected_few() -> None:
    """Project-wide roles: only BigQuery jobUser (runtime), logWriter (build), conditional objectAdmin (build)."""
    grants = set()
    for rtype, _, body, _ in _blocks("resource"):
        if rtype.startswith("google_project_iam"):
            assert rtype == "google_project_iam_member", f"{rtype} would overwrite other members' grants"
            grants.add((body["role"], body["member"], bool(body.get("condition"))))
            assert "secretmanager" not in body["role"], "Secret Manager roles are granted per secret only"
    build = "serviceAccount:${google_service_account.build.email}"
    assert grants == {
        ("roles/bigquery.jobUser", RUNTIME_SA, False),
        ("roles/logging.logWriter", build, False),
        ("roles/storage.objectAdmin", build, True),  # the documented build role, gcf-v2-sources-* only
    }
    condition = _resource("google_project_iam_member", "build_gcf_sources_admin")["condition"][0]
    assert "gcf-v2-sources-" in condition["expression"]


def test_no_public_members_anywhere() -> None:
    """No file in terraform/ names allUsers or allAuthenticatedUsers; every member is a service account."""
    for path in TF.rglob("*"):
        if path.is_file() and not {".build", ".terraform"} & set(path.relative_to(TF).parts):
            text = path.read_text(encoding="utf-8", errors="replace")
            for public in ("allUsers", "allAuthenticatedUsers"):
                assert public not in text, f"{path.relative_to(REPO)} mentions {public}"
    for rtype, rname, body, _ in _blocks("resource"):
        if "member" in body:
            assert body["member"].startswith("serviceAccount:${google_service_account."), f"{rtype}.{rname}"
        assert "members" not in body, f"{rtype}.{rname}: use *_iam_member, not bindings"


# --- scheduler and invoker ---------------------------------------------------------------------


def test_scheduler_calls_the_function_with_an_oidc_token_of_the_invoker() -> None:
    """The job POSTs to the function URI with an OIDC token of the invoker SA, audience = URI."""
    job = _resource("google_cloud_scheduler_job", "hourly")
    target = job["http_target"][0]
    uri = "${google_cloudfunctions2_function.fn.service_config[0].uri}"
    assert target["http_method"] == "POST"
    assert target["uri"] == uri
    assert "oauth_token" not in target
    assert target["oidc_token"] == [
        {"service_account_email": "${google_service_account.invoker.email}", "audience": uri}
    ]
    assert job["schedule"] == "${var.schedule}" and job["time_zone"] == "${var.time_zone}"
    assert job["retry_config"][0]["retry_count"] >= 1
    assert job["attempt_deadline"] == "${local.scheduler_deadline}"
    jobs = [name for t, name, *_ in _blocks("resource") if t == "google_cloud_scheduler_job"]
    assert sorted(jobs) == ["doctor", "hourly"], "the digest needs no job; doctor has its own (paused) one"


def test_the_doctor_job_is_paused_manual_only_and_sends_the_doctor_body() -> None:
    """The doctor job never runs on its own, is not retried, and POSTs {"doctor": true, "post_test": true}."""
    job = _resource("google_cloud_scheduler_job", "doctor")
    assert job["paused"] is True
    assert job["retry_config"][0]["retry_count"] == 0
    target = job["http_target"][0]
    assert target["http_method"] == "POST"
    assert target["body"] == "${base64encode(jsonencode({doctor = true, post_test = true}))}"
    assert target["oidc_token"][0]["service_account_email"] == "${google_service_account.invoker.email}"


def test_run_invoker_is_granted_only_to_the_invoker_on_the_function_service() -> None:
    """roles/run.invoker exists once: on the function's Cloud Run service, for the invoker SA."""
    grants = [(t, b) for t, _, b, _ in _blocks("resource") if b.get("role") == "roles/run.invoker"]
    assert len(grants) == 1
    rtype, body = grants[0]
    assert rtype == "google_cloud_run_v2_service_iam_member"
    assert body["name"] == "${google_cloudfunctions2_function.fn.service_config[0].service}"
    assert body["member"] == INVOKER_SA


# --- the function ------------------------------------------------------------------------------


def test_function_build_and_service_settings() -> None:
    """Runtime, entry point, memory, timeout above the check deadline, concurrency, SAs, ingress."""
    fn = _resource("google_cloudfunctions2_function", "fn")
    build, service = fn["build_config"][0], fn["service_config"][0]
    locals_ = _locals()
    assert build["runtime"] == "${var.runtime}"
    assert dict(_variables())["runtime"]["default"] == "python313"
    assert build["entry_point"] == "budget_check"
    assert build["service_account"] == "${google_service_account.build.id}"  # projects/P/serviceAccounts/EMAIL
    assert service["service_account_email"] == "${google_service_account.runtime.email}"
    assert service["available_memory"] == "256M"
    assert service["timeout_seconds"] == "${local.function_timeout_seconds}"
    assert locals_["function_timeout_seconds"] > locals_["check_deadline_seconds"] == 60
    assert service["max_instance_request_concurrency"] == 1
    assert 1 <= service["max_instance_count"] <= 3
    # Cloud Run's ingress docs count Cloud Scheduler of the same project as internal (function.tf).
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert "service" not in service, "service_config.service is output-only since provider 7.0"


def test_archive_is_named_by_its_hash_and_excludes_dev_trees() -> None:
    """The source object name carries the archive hash; tests, terraform, bench, simulator are excluded."""
    archive = next(b for t, n, b, _ in _blocks("data") if (t, n) == ("archive_file", "source"))
    assert archive["source_dir"] == "${local.source_root}"
    assert _locals()["source_root"] == '${abspath("${path.module}/..")}'
    assert archive["excludes"] == "${local.source_excludes}"
    assert archive["output_path"].startswith("${path.module}/.build/")
    obj = _resource("google_storage_bucket_object", "source")
    assert "${data.archive_file.source.output_sha256}" in obj["name"]
    storage = _resource("google_cloudfunctions2_function", "fn")["build_config"][0]["source"][0]["storage_source"][0]
    assert storage["object"] == "${google_storage_bucket_object.source.name}"
    known = set(_locals()["source_known_excludes"])
    assert {"tests", "terraform", "bench", "simulator", "devservers", "scripts", ".git", ".venv"} <= known


def _excluded(rel: str, patterns: list[str]) -> bool:
    """archive_file's test (doublestar.PathMatch of the path relative to source_dir), for these patterns."""
    for pattern in patterns:
        regex = "".join(
            "(?:.*/)?" if part == "**/" else "[^/]*" if part == "*" else re.escape(part)
            for part in re.split(r"(\*\*/|\*)", pattern)
        )
        if re.fullmatch(regex, rel):
            return True
    return False


def _archived(root: Path, patterns: list[str]) -> set[str]:
    """Files archive_file puts in the zip: an excluded directory is skipped whole."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if not _excluded((base / d).as_posix(), patterns)]
        out |= {(base / f).as_posix() for f in filenames if not _excluded((base / f).as_posix(), patterns)}
    return out


@needs_terraform
def test_archive_holds_only_the_deployable_code(tmp_path: Path) -> None:
    """On a sample tree, the evaluated excludes leave main.py, top-level modules, packages, requirements.txt."""
    deployable = {
        "main.py",
        "config.py",
        "check.py",
        "requirements.txt",
        "providers/__init__.py",
        "providers/openai.py",
        "alerts/__init__.py",
        "alerts/slack/render.py",
    }
    other = {
        "conftest.py",
        "README.md",
        "Makefile",
        "requirements-dev.txt",
        ".gitignore",
        "budgets.example.json",
        "notes.txt",
        ".git/HEAD",
        ".venv/pyvenv.cfg",
        ".venv-checkov/bin/checkov",
        "tests/test_x.py",
        "tests/fixtures/openai/costs.json",
        "bench/bench_check.py",
        "simulator/server.py",
        "devservers/run.py",
        "scripts/checkov.sh",
        ".ci/run",
        "docs/arch.md",
        "newtool/x.py",
        "deep/only/nested.txt",
        "providers/__pycache__/openai.cpython-313.pyc",
        "alerts/stray.pyc",
        ".state/alert-state.json",
    }
    for rel in deployable | other:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    patterns = _console_json(tmp_path, _example_tfvars_text(), "local.source_excludes")
    shutil.rmtree(tmp_path / "terraform")  # the module copy made by _console; excluded anyway
    assert "terraform" in patterns
    assert _archived(tmp_path, patterns) == deployable


@needs_terraform
def test_archive_of_this_checkout_holds_only_the_deployable_code(tmp_path: Path) -> None:
    """On this very checkout, only main.py, top-level modules, the packages and requirements.txt ship."""
    for entry in REPO.iterdir():
        if entry.name != "terraform":
            (tmp_path / entry.name).symlink_to(entry)  # path.module/.. must look like the repo root
    patterns = _console_json(tmp_path, _example_tfvars_text(), "local.source_excludes")
    archived = _archived(REPO, patterns)
    packages = tuple(f"{p}/" for p in _locals()["source_packages"])
    stray = sorted(
        f
        for f in archived
        if not (f == "requirements.txt" or ("/" not in f and f.endswith(".py")) or f.startswith(packages))
    )
    assert not stray, f"would be deployed: {stray}"
    assert {"main.py", "config/__init__.py", "requirements.txt"} <= archived
    assert not any(f.startswith(("tests/", "terraform/", "bench/", "simulator/")) for f in archived)


def test_every_top_level_package_is_deployed_or_a_dev_tree() -> None:
    """A top-level Python package is either in source_packages or one of the known excluded trees."""
    locals_ = _locals()
    deployed, dev = set(locals_["source_packages"]), set(locals_["source_known_excludes"])
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages <= deployed | dev, f"add to source_packages or source_known_excludes: {packages - deployed - dev}"
    assert deployed == {"alerts", "config", "providers"}


# --- the budget document -----------------------------------------------------------------------


def test_example_budget_document_validates() -> None:
    """The BUDGET_CONFIG built from terraform.tfvars.example validates with config.BudgetConfig."""
    document = _budget_document(_example_tfvars())
    parsed = config.parse_budget_config(json.dumps(document), origin="terraform.tfvars.example")
    keyed = [a for name in KEYED_PROVIDERS for a in parsed.accounts(name)]
    assert keyed and all(a.key_secret and not a.key_env for a in keyed)  # type: ignore[attr-defined]
    assert set(parsed.configured()) == {"openai", "anthropic", "xai", "gemini"}


@needs_terraform
def test_terraform_builds_the_same_budget_document(tmp_path: Path) -> None:
    """Terraform's own evaluation of locals.budget_document equals the Python restatement and validates."""
    document = _console_json(tmp_path, _example_tfvars_text(), "local.budget_document")
    assert document == _budget_document(_example_tfvars())
    parsed = config.parse_budget_config(json.dumps(document), origin="locals.budget_document")
    assert parsed.total_budget_usd == 3000


@needs_terraform
def test_every_key_secret_names_a_secret_terraform_creates(tmp_path: Path) -> None:
    """Each keyed account's key_secret is the latest version of its secret in keyed_accounts."""
    got = _console_json(
        tmp_path,
        _example_tfvars_text(),
        "{ doc = local.budget_document, keyed = local.keyed_accounts, sets = local.export_datasets }",
    )
    created = {v["secret_id"] for v in got["keyed"].values()}
    named = set()
    for provider in KEYED_PROVIDERS:
        for account in got["doc"]["providers"][provider]["accounts"]:
            assert config.SECRET_NAME_RE.match(account["key_secret"])
            named.add(account["key_secret"].split("/")[3])
    assert named == created
    assert len(created) == 4  # openai prod + research, anthropic default, xai default
    assert got["sets"] == {"acme-billing.billing_export": {"project": "acme-billing", "dataset_id": "billing_export"}}


@needs_terraform
def test_omitted_settings_are_left_to_config_defaults(tmp_path: Path) -> None:
    """A minimal budgets value yields no nulls and gets one default account with its key secret."""
    tfvars = (
        'project_id = "acme-llm-budget"\n'
        "budgets = { total_budget_usd = 100, providers = { anthropic = { budget_usd = 100 } } }\n"
    )
    document = _console_json(tmp_path, tfvars, "local.budget_document")
    assert document == {
        "total_budget_usd": 100,
        "providers": {
            "anthropic": {
                "budget_usd": 100,
                "accounts": [
                    {
                        "label": "default",
                        "key_secret": "projects/acme-llm-budget/secrets/"
                        "llm-budget-anthropic-default-admin-key/versions/latest",
                    }
                ],
            }
        },
    }
    assert config.parse_budget_config(json.dumps(document), origin="minimal").digest.hour_utc == 9


@needs_terraform
def test_gemini_only_needs_no_secret_and_one_grant_per_dataset(tmp_path: Path) -> None:
    """Gemini accounts create no key secret; two tables in one dataset give one dataset grant."""
    tables = [
        "b-proj1.ds.gcp_billing_export_resource_v1_01ABCD_234567_89ABCD",
        "b-proj1.ds.gcp_billing_export_v1_01ABCD_234567_89ABCE",
    ]
    accounts = (
        f'[{{ billing_export_table = "{tables[0]}" }}, {{ label = "two", billing_export_table = "{tables[1]}" }}]'
    )
    tfvars = (
        'project_id = "acme-llm-budget"\n'
        "budgets = { total_budget_usd = 100, providers = { gemini = {\n"
        f"  budget_usd = 100, accounts = {accounts}\n"
        "} } }\n"
    )
    got = _console_json(
        tmp_path, tfvars, "{ doc = local.budget_document, keyed = local.keyed_accounts, sets = local.export_datasets }"
    )
    assert got["keyed"] == {}
    assert got["sets"] == {"b-proj1.ds": {"project": "b-proj1", "dataset_id": "ds"}}
    parsed = config.parse_budget_config(json.dumps(got["doc"]), origin="gemini only")
    assert [a.billing_export_table for a in parsed.accounts("gemini")] == tables  # type: ignore[attr-defined]


# --- variables ---------------------------------------------------------------------------------


def test_variables_are_typed_described_and_alphabetical() -> None:
    """Every variable has a type and a description, and they are declared in alphabetical order."""
    names = [name for name, _ in _variables()]
    assert names == sorted(names)
    for name, body in _variables():
        assert body.get("type"), f"{name} has no type"
        assert len(str(body.get("description", "")).strip()) > 20, f"{name} needs a description"


def test_inputs_the_issue_lists_are_validated_with_fixing_messages() -> None:
    """Schedule, region, budgets (thresholds, export table), Slack, name prefix... have validations."""
    validations = {name: body.get("validation", []) for name, body in _variables()}
    assert {name for name, v in validations.items() if v} >= VALIDATED
    for name, rules in validations.items():
        for rule in rules:
            assert re.search(r"e\.g\.|must be|one of", rule["error_message"]), f"{name}: say how to fix it"
    budget_messages = " ".join(r["error_message"] for r in validations["budgets"])
    for topic in ("thresholds_pct", "0 < p <= 1000", "billing_export_table", "gcp_billing_export_v1_", "team_id"):
        assert topic in budget_messages


BAD_INPUTS = [
    (r"\bthresholds_pct\s*=\s*\[50, 80, 100\]", "thresholds_pct = [0, 80]", "0 < p <= 1000"),
    (r"\bforecast_thresholds_pct\s*=\s*\[100\]", "forecast_thresholds_pct = [1500]", "0 < p <= 1000"),
    (r"gcp_billing_export_v1_01ABCD_234567_89ABCD", "my_table", "gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX"),
    (r"\bschedule\s*=\s*\"7 \* \* \* \*\"", 'schedule = "hourly"', "5-field unix-cron"),
    (r"\bregion\s*=\s*\"us-central1\"", 'region = "us-central1-a"', "not a zone"),
    (r'label = "research"', 'label = "Research Team"', "account labels are unique"),
    (r"\bhour_utc\s*=\s*9", "hour_utc = 24", "UTC hour (0-23)"),
    (r"\btotal_budget_usd\s*=\s*3000", "total_budget_usd = 0", "positive monthly amount"),
]


@needs_terraform
@pytest.mark.parametrize(("pattern", "replacement", "message"), BAD_INPUTS)
def test_bad_input_is_rejected_with_its_fix(tmp_path: Path, pattern: str, replacement: str, message: str) -> None:
    """terraform rejects a broken terraform.tfvars.example with a message that says what to write."""
    text, count = re.subn(pattern, replacement, _example_tfvars_text(), count=1)
    assert count == 1, f"{pattern!r} not in terraform.tfvars.example"
    _, stderr = _console(tmp_path, text, "local.function_name")
    flat = " ".join(stderr.split())
    assert "Invalid value for variable" in flat
    assert message in flat


@needs_terraform
@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ('name_prefix = "a-much-too-long-name-prefix"', "2-20 characters"),
        ('slack_webhook_secret_id = "projects/p/secrets/s"', "just the ID"),
        ('runtime = "python310"', "python311, python312, python313, python314"),
    ],
)
def test_bad_scalar_input_is_rejected(tmp_path: Path, assignment: str, message: str) -> None:
    """Name prefix, Slack secret id and runtime are validated too."""
    _, stderr = _console(tmp_path, _example_tfvars_text() + "\n" + assignment + "\n", "local.function_name")
    flat = " ".join(stderr.split())
    assert "Invalid value for variable" in flat and message in flat


@needs_terraform
def test_example_tfvars_pass_every_validation(tmp_path: Path) -> None:
    """terraform.tfvars.example is accepted as it is, and the scheduler deadline exceeds the timeout."""
    got = _console_json(
        tmp_path,
        _example_tfvars_text(),
        "{ deadline = local.scheduler_deadline, timeout = local.function_timeout_seconds }",
    )
    assert int(got["deadline"].removesuffix("s")) > got["timeout"]


# --- the rest of the module --------------------------------------------------------------------


def test_apis_are_enabled_and_kept_on_destroy_deliberately() -> None:
    """The APIs the issue lists are enabled with disable_on_destroy set explicitly."""
    services = set(_parsed("apis.tf")["locals"][0]["services"])
    wanted = "cloudfunctions run cloudbuild artifactregistry cloudscheduler secretmanager bigquery storage iam logging"
    assert {f"{api}.googleapis.com" for api in wanted.split()} <= services
    service = _resource("google_project_service", "enabled")
    assert service["disable_on_destroy"] is False


def test_everything_waits_for_the_apis_after_enabling_them() -> None:
    """Only the 60 s pause depends on google_project_service; what used to wait on the APIs waits on the pause."""
    pause = _resource("time_sleep", "api_propagation")
    assert pause["create_duration"] == "60s"
    assert pause["depends_on"] == ["${google_project_service.enabled}"]
    assert "monitoring.googleapis.com" in _parsed("apis.tf")["locals"][0]["services"]
    waiting = set()
    for rtype, rname, body, _ in _blocks("resource"):
        deps = body.get("depends_on", [])
        if (rtype, rname) != ("time_sleep", "api_propagation"):
            assert "${google_project_service.enabled}" not in deps, f"{rtype}.{rname}: depend on the pause"
        if "${time_sleep.api_propagation}" in deps:
            waiting.add(rtype)
    assert {
        "google_service_account",
        "google_secret_manager_secret",
        "google_storage_bucket",
        "google_artifact_registry_repository",
        "google_logging_metric",
        "google_monitoring_notification_channel",
    } <= waiting


@needs_terraform
def test_scheduler_region_defaults_to_region_and_can_be_set(tmp_path: Path) -> None:
    """The job and trigger_command use scheduler_region, which falls back to region when null."""
    assert _resource("google_cloud_scheduler_job", "hourly")["region"] == "${local.scheduler_region}"
    outputs = {name: body for entry in _parsed("outputs.tf")["output"] for name, body in entry.items()}
    assert "--location=${local.scheduler_region}" in outputs["trigger_command"]["value"]
    assert _console_json(tmp_path / "a", _example_tfvars_text(), "local.scheduler_region") == "us-central1"
    tfvars = _example_tfvars_text() + '\nscheduler_region = "europe-west1"\n'
    assert _console_json(tmp_path / "b", tfvars, "local.scheduler_region") == "europe-west1"


def test_buckets_are_private_and_state_is_versioned() -> None:
    """Both buckets: uniform access and public access prevention; state: versioning and retention rules."""
    buckets = {n: b for t, n, b, _ in _blocks("resource") if t == "google_storage_bucket"}
    assert set(buckets) == {"state", "source"}
    for name, body in buckets.items():
        assert body["uniform_bucket_level_access"] is True, name
        assert body["public_access_prevention"] == "enforced", name
    state = buckets["state"]
    assert state["versioning"] == [{"enabled": True}]
    conditions = [rule["condition"][0] for rule in state["lifecycle_rule"]]
    assert {"days_since_noncurrent_time", "num_newer_versions"} <= {k for c in conditions for k in c}
    grant = _resource("google_storage_bucket_iam_member", "state_runtime")
    assert grant["role"] in {"roles/storage.objectUser", "roles/storage.objectAdmin"}
    assert grant["member"] == RUNTIME_SA and grant["bucket"] == "${google_storage_bucket.state.name}"


def test_billing_export_is_readable_on_its_dataset_only() -> None:
    """dataViewer on each export dataset (derived from the table ids), jobUser on the project."""
    grant = _resource("google_bigquery_dataset_iam_member", "runtime_export_reader")
    assert grant["for_each"] == "${local.export_datasets}"
    assert grant["role"] == "roles/bigquery.dataViewer" and grant["member"] == RUNTIME_SA
    assert grant["project"] == "${each.value.project}" and grant["dataset_id"] == "${each.value.dataset_id}"


def test_readme_tables_list_every_input_and_output() -> None:
    """terraform/README.md has a table row for every variable and every output."""
    readme = (TF / "README.md").read_text(encoding="utf-8")
    outputs = [name for entry in _parsed("outputs.tf")["output"] for name in entry]
    for name in [n for n, _ in _variables()] + outputs:
        assert re.search(rf"^\| `{name}` \|", readme, re.MULTILINE), f"README.md: no table row for {name}"


def test_terraform_fmt_check_passes() -> None:
    """`terraform fmt -check -recursive terraform` reports no file to reformat."""
    if TERRAFORM is None:
        pytest.skip("terraform binary not on PATH: cannot run terraform fmt -check")
    proc = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-no-color", "terraform"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        check=False,
    )
    assert proc.returncode == 0, f"run `terraform fmt -recursive terraform`; unformatted:\n{proc.stdout}"


CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="no .venv-checkov (made by `bash scripts/checkov.sh`)")
def test_checkov_parses_every_terraform_file() -> None:
    """checkov parses every file of terraform/: one it cannot parse is skipped with exit 0 and its
    resources go unchecked (its HCL parser loses track of a template inside an interpolation that
    holds an object literal, e.g. "${join(",", [for m in [{ a = 1 }] : "${m.a}"])}")."""
    proc = subprocess.run(
        [str(CHECKOV), "-d", "terraform", "--framework", "terraform", "--skip-download", "--quiet", "-o", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_PARSE_ERROR_FAIL": "true"},
        check=False,
    )
    reports = json.loads(proc.stdout)
    for report in reports if isinstance(reports, list) else [reports]:
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, "a file checkov cannot parse: build the message with format(...)"
        assert summary["resource_count"] > 0
    assert proc.returncode == 0, proc.stdout[-2000:]
