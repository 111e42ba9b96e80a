"""terraform/aws/, structurally (no AWS provider schema offline): the role trusts exactly the function's
Google service account and may only read Cost Explorer."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from providers import bedrock

AWS_TF = Path(__file__).resolve().parent.parent / "terraform" / "aws"
OPTIONS = hcl2.SerializationOptions(explicit_blocks=False, strip_string_quotes=True, with_comments=False)


@cache
def _doc() -> dict[str, Any]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(AWS_TF.glob("*.tf")):
        with path.open(encoding="utf-8") as f:
            for kind, entries in hcl2.load(f, serialization_options=OPTIONS).items():
                merged.setdefault(kind, []).extend(entries)
    return merged


def _block(kind: str, rtype: str, name: str) -> dict[str, Any]:
    for entry in _doc().get(kind, []):
        if rtype in entry and name in entry[rtype]:
            body: dict[str, Any] = entry[rtype][name]
            return body
    raise AssertionError(f"no {kind} {rtype}.{name} in terraform/aws")


def _conditions(statement: dict[str, Any]) -> dict[str, list[str]]:
    return {c["variable"]: c["values"] for c in statement["condition"]}


def test_trust_pins_one_google_service_account_and_the_audience() -> None:
    """Only accounts.google.com and AssumeRoleWithWebIdentity; sub and aud (azp) = the SA id, oaud = the audience."""
    (statement,) = _block("data", "aws_iam_policy_document", "trust")["statement"]
    assert statement["effect"] == "Allow" and statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    (principal,) = statement["principals"]
    assert principal == {"type": "Federated", "identifiers": ["accounts.google.com"]}
    assert all(c["test"] == "StringEquals" for c in statement["condition"])
    assert _conditions(statement) == {
        "accounts.google.com:sub": ["${var.google_subject}"],
        "accounts.google.com:aud": ["${var.google_subject}"],
        "accounts.google.com:oaud": ["${var.google_audience}"],
    }
    default = next(e["google_audience"] for e in _doc()["variable"] if "google_audience" in e)["default"]
    assert default == bedrock.DEFAULT_AUDIENCE, "the role trusts the audience the function asks for by default"


def test_the_role_may_only_read_cost_and_usage() -> None:
    """One Allow statement, ce:GetCostAndUsage only: the one call providers/bedrock.py signs."""
    (statement,) = _block("data", "aws_iam_policy_document", "cost_explorer_read")["statement"]
    assert statement["effect"] == "Allow" and statement["actions"] == ["ce:GetCostAndUsage"]
    assert {f"ce:{t.split('.')[-1]}" for m, t in bedrock.READ_CALLS if t.startswith("AWSInsights")} == {
        "ce:GetCostAndUsage"
    }
    role = _block("resource", "aws_iam_role", "ce_read")
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.trust.json}"
    policy = _block("resource", "aws_iam_role_policy", "cost_explorer_read")
    assert policy["policy"] == "${data.aws_iam_policy_document.cost_explorer_read.json}"
    assert not [e for e in _doc().get("resource", []) if "aws_iam_access_key" in e or "aws_iam_user" in e]


def test_the_role_arn_is_output_and_the_subject_is_validated() -> None:
    """role_arn is the output the budget document needs; google_subject must be numeric (not an email)."""
    outputs = {name for e in _doc()["output"] for name in e}
    assert outputs == {"role_arn"}
    subject = next(e["google_subject"] for e in _doc()["variable"] if "google_subject" in e)
    assert "default" not in subject and "[0-9]" in subject["validation"][0]["condition"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_is_clean() -> None:
    """terraform fmt -check passes for terraform/aws."""
    proc = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(AWS_TF)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout.decode()
