"""terraform/'s `budgets` and `slack_destinations` against the code's budget document schema.

The type of `var.budgets` is parsed from variables.tf and compared, field by field and at every
level, with the pydantic models config builds (`config.document_schema`: BudgetConfig, each
provider's ProviderBudget and account schema, Team and each vendor's TeamMatch, WeeklyReport...):
same names, same kinds (number / string / bool / list / map / object), optional exactly where the
code has a default, and Terraform's defaults equal to the code's. What Terraform supplies itself
(key_secret, destinations) and what stays local (key_env, webhook_env) is listed with its reason.

Checks that need Terraform's own evaluation run `terraform console` on variables.tf + locals.tf
(see tests/test_terraform.py); they are skipped only where the terraform binary is absent.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import hcl2
import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from test_terraform import (
    HCL_OPTIONS,
    _budget_document,
    _console,
    _console_json,
    _example_tfvars,
    _example_tfvars_text,
    _variables,
    needs_terraform,
)

import config
import providers
from config._teams import RESERVED_TEAM_NAMES, WEEKDAYS
from providers import anthropic, gemini, openai
from providers._spec import LABEL_RE

# --- a reader for Terraform type constraints -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TfType:
    """A Terraform type constraint: `kind` is string, number, bool, any, list, set, map or object."""

    kind: str
    element: TfType | None = None  # list / set / map
    attributes: dict[str, TfAttribute] = dataclasses.field(default_factory=dict)  # object


@dataclasses.dataclass(frozen=True)
class TfAttribute:
    type: TfType
    optional: bool = False
    default: Any = None  # the optional(T, default) default, as a Python value


_TOKEN = re.compile(
    r'\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>-?[0-9]+(?:\.[0-9]+)?)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[(){}\[\]=,]))'
)


class _Reader:
    """Recursive descent over the type expression python-hcl2 hands back as `${object({...})}`."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise ValueError(f"cannot read the type at {text[pos : pos + 30]!r}")
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def take(self, want: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.i]
        if want is not None and token[1] != want:
            raise ValueError(f"expected {want!r}, found {token[1]!r}")
        self.i += 1
        return token

    def type(self) -> TfType:
        _, name = self.take()
        if name in ("string", "number", "bool", "any"):
            return TfType(name)
        self.take("(")
        if name in ("list", "set", "map"):
            element = self.type()
            self.take(")")
            return TfType(name, element=element)
        if name == "object":
            self.take("{")
            attributes = {}
            while self.peek() != "}":
                _, attr = self.take()
                self.take("=")
                attributes[attr] = self.attribute()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            self.take(")")
            return TfType("object", attributes=attributes)
        raise ValueError(f"unknown type constructor {name!r}")

    def attribute(self) -> TfAttribute:
        if self.peek() != "optional":
            return TfAttribute(self.type())
        self.take("optional")
        self.take("(")
        attr_type = self.type()
        default = None
        if self.peek() == ",":
            self.take(",")
            default = self.value()
        self.take(")")
        return TfAttribute(attr_type, optional=True, default=default)

    def value(self) -> Any:
        kind, token = self.take()
        if kind == "string":
            return json.loads(token)
        if kind == "number":
            return Decimal(token)
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return items
        if token == "{":
            obj = {}
            while self.peek() != "}":
                _, key = self.take()
                self.take("=")
                obj[key] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            return obj
        raise ValueError(f"cannot read the value {token!r}")


def parse_type(expression: str) -> TfType:
    """`${object({...})}` (or a bare type expression) as a TfType."""
    text = expression.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    reader = _Reader(text)
    parsed = reader.type()
    if reader.i != len(reader.tokens):
        raise ValueError(f"unread input after the type: {reader.tokens[reader.i :][:3]}")
    return parsed


# --- the comparison ------------------------------------------------------------------------------

# Paths (fnmatch patterns) of code fields the Terraform variable does not take, and why.
SUPPLIED_BY_TERRAFORM = {
    "budgets.destinations": "built from var.slack_destinations: one secret each, webhook_secret",
    "budgets.providers.*.accounts[*].key_secret": "the secret Terraform creates for the account",
    "budgets.providers.*.accounts[*].key_env": "local runs only: the cloud reads key_secret",
}
# Paths where the code is lenient on purpose and Terraform is stricter, and why.
REQUIRED_IN_TERRAFORM = {
    "budgets.providers.*.budget_usd": "BudgetConfig requires it of every configured provider (model validator)",
}


def _matches(path: str, table: dict[str, str]) -> bool:
    """Whether `path` is one of the table's patterns, `*` standing for one path segment or index."""
    return any(re.fullmatch(re.escape(pattern).replace(r"\*", "[^.]+"), path) for pattern in table)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without Annotated[...] and `| None`, whether None was allowed)."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(get_args(annotation))
            assert len(args) == 1, f"unsupported union {annotation}"
            annotation = args[0]
        else:
            return annotation, nullable


def _kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (tuple, list):
        return "list"
    if origin is dict:
        return "map"
    if origin is Literal or annotation is str:
        return "string"
    if annotation is bool:
        return "bool"
    if annotation in (int, float, Decimal):
        return "number"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    raise AssertionError(f"no Terraform kind for {annotation!r}")


def _element(annotation: Any) -> Any:
    args = get_args(annotation)
    return args[1] if get_origin(annotation) is dict else args[0]


def _plain(value: Any) -> Any:
    """A pydantic default as Terraform would write it (tuples as lists, Decimal for numbers)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def compare(tf: TfType, annotation: Any, path: str) -> list[str]:
    """Every difference between a Terraform type and a code annotation, one line each."""
    annotation, _ = _unwrap(annotation)
    kind = _kind(annotation)
    if tf.kind != kind:
        return [f"{path}: Terraform has {tf.kind}, the code {kind} ({annotation!r})"]
    if kind in ("list", "map"):
        assert tf.element is not None
        return compare(tf.element, _element(annotation), f"{path}[*]" if kind == "list" else f"{path}.*")
    if kind != "object":
        return []
    problems = []
    fields = {n: f for n, f in annotation.model_fields.items() if not _matches(f"{path}.{n}", SUPPLIED_BY_TERRAFORM)}
    for name in sorted(set(fields) - set(tf.attributes)):
        problems.append(f"{path}.{name}: in the code's schema, missing from the Terraform type")
    for name in sorted(set(tf.attributes) - set(fields)):
        problems.append(f"{path}.{name}: in the Terraform type, not in the code's schema")
    for name in sorted(set(fields) & set(tf.attributes)):
        field, attr, where = fields[name], tf.attributes[name], f"{path}.{name}"
        problems += _optionality(field, attr, where)
        problems += compare(attr.type, field.annotation, where)
    return problems


def _optionality(field: Any, attr: TfAttribute, where: str) -> list[str]:
    provider_accounts = re.fullmatch(r"budgets\.providers\.([a-z]+)\.accounts", where)
    if provider_accounts:  # optional exactly where the vendor does not require accounts
        spec = providers.spec(provider_accounts[1])
        if attr.optional != (spec.accounts_required is None):
            return [f"{where}: optional in Terraform must mean the provider needs no accounts (accounts_required)"]
        if attr.optional and (attr.default != [{}] or len(spec.default_accounts()) != 1):
            return [f"{where}: the default must be one account with every default, like spec.default_accounts()"]
        return []
    if _matches(where, REQUIRED_IN_TERRAFORM):
        return [] if not attr.optional else [f"{where}: must be required in Terraform ({REQUIRED_IN_TERRAFORM})"]
    if field.is_required() == attr.optional:
        want = "required" if field.is_required() else "optional"
        return [f"{where}: the code has it {want}, Terraform does not"]
    if attr.default is not None:
        code_default = field.default if field.default is not PydanticUndefined else None
        if _plain(attr.default) != _plain(code_default):
            return [f"{where}: Terraform's default {attr.default!r} is not the code's {code_default!r}"]
    return []


def _budgets_type() -> TfType:
    return parse_type(dict(_variables())["budgets"]["type"])


def _schema() -> type[config.BudgetConfig]:
    return config.document_schema(providers.specs())


# --- the variable's type against the code's schema -----------------------------------------------


def test_budgets_type_equals_the_code_schema() -> None:
    """var.budgets has every field of the budget document, at every level, with the code's kinds,
    optionality and defaults (teams, match blocks, thresholds_usd, notify, weekly_report included)."""
    assert compare(_budgets_type(), _schema(), "budgets") == []


def test_every_registered_provider_has_a_typed_block_and_a_match_block() -> None:
    """budgets.providers and budgets.teams.*.match name exactly the registered providers."""
    budgets = _budgets_type()
    names = [s.name for s in providers.specs()]
    assert list(budgets.attributes["providers"].type.attributes) == names
    team = budgets.attributes["teams"].type.element
    assert team is not None
    assert list(team.attributes["match"].type.attributes) == names
    for spec in providers.specs():
        block = team.attributes["match"].type.attributes[spec.name]
        assert set(block.type.attributes) == set(spec.team_match.model_fields), spec.name


def test_slack_destinations_type_is_a_map_of_described_destinations() -> None:
    """slack_destinations: a map of { description = optional(string) }, default {}."""
    body = dict(_variables())["slack_destinations"]
    parsed = parse_type(body["type"])
    assert parsed.kind == "map" and parsed.element is not None
    assert parsed.element.attributes == {"description": TfAttribute(TfType("string"), optional=True)}
    assert body["default"] == {}


# Seeded drifts the comparison must report: (what, text in the type, replacement, expected line).
SEEDED = [
    (
        "a field the code lacks",
        "allow_overlap       = optional(bool)",
        "allow_overlap = optional(bool)\n overlap_ok = optional(bool)",
        "budgets.overlap_ok: in the Terraform type, not in the code's schema",
    ),
    (
        "a missing team selector",
        "line_item_patterns = optional(list(string))",
        "",
        "budgets.teams.*.match.openai.line_item_patterns: in the code's schema, missing from the Terraform type",
    ),
    (
        "a wrong kind",
        "copy_all_to_default = optional(bool)",
        "copy_all_to_default = optional(string)",
        "budgets.copy_all_to_default: Terraform has string",
    ),
    (
        "a required field made optional",
        "budget_usd              = number",
        "budget_usd              = optional(number)",
        "budgets.teams.*.budget_usd: the code has it required, Terraform does not",
    ),
    (
        "a default that differs",
        'label          = optional(string, "default")',
        'label          = optional(string, "main")',
        "budgets.providers.openai.accounts[*].label: Terraform's default 'main' is not the code's 'default'",
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "expected"), SEEDED, ids=[s[0] for s in SEEDED])
def test_comparison_reports_seeded_drift(what: str, old: str, new: str, expected: str) -> None:
    """A drift between variables.tf and the code's schema is reported, naming the path."""
    text = (Path(__file__).resolve().parents[1] / "terraform" / "variables.tf").read_text(encoding="utf-8")
    assert old in text, what
    parsed = dict(hcl2.loads(text.replace(old, new, 1), serialization_options=HCL_OPTIONS))
    budgets = next(body for entry in parsed["variable"] for name, body in entry.items() if name == "budgets")
    problems = compare(parse_type(budgets["type"]), _schema(), "budgets")
    assert any(p.startswith(expected) for p in problems), problems


def test_type_reader_reads_optional_defaults_and_nesting() -> None:
    """The type reader keeps optional(T, default) defaults and nested objects, and refuses junk."""
    parsed = parse_type('${object({a = optional(list(object({b = optional(string, "x")})), [{}]), c = map(number)})}')
    a = parsed.attributes["a"]
    assert a.optional and a.default == [{}]
    assert a.type.element is not None and a.type.element.attributes["b"] == TfAttribute(TfType("string"), True, "x")
    assert parsed.attributes["c"] == TfAttribute(TfType("map", element=TfType("number")))
    with pytest.raises(ValueError, match="unknown type constructor"):
        parse_type("tuple([string])")


# --- validations that restate the code's rules ----------------------------------------------------


def _conditions(variable: str) -> str:
    return " ".join(rule["condition"] for rule in dict(_variables())[variable].get("validation", []))


def test_name_and_id_patterns_are_the_codes() -> None:
    """Team and destination names use LABEL_RE; project and workspace ids the vendors' regexes;
    reserved team names and weekdays are the code's."""
    budgets, destinations = _conditions("budgets"), _conditions("slack_destinations")
    assert f'regex("{LABEL_RE.pattern}", name)' in destinations
    assert f'regex("{LABEL_RE.pattern}", name)' in budgets  # team names
    for pattern in (openai.PROJECT_ID_RE.pattern, anthropic.WORKSPACE_ID_RE.pattern, gemini.PROJECT_ID_RE.pattern):
        assert f'regex("{pattern}", id)' in budgets, pattern
    assert f'id == "{anthropic.DEFAULT_WORKSPACE}"' in budgets
    assert f"contains({json.dumps(sorted(RESERVED_TEAM_NAMES, reverse=True))}, name)" in budgets
    assert json.dumps(list(WEEKDAYS)) in budgets
    assert typing.get_args(config.WeeklyReport.model_fields["weekday"].annotation) == WEEKDAYS


# --- what Terraform renders ------------------------------------------------------------------------

MINIMAL = (
    'project_id = "acme-llm-budget"\n'
    "budgets = { total_budget_usd = 100, providers = { anthropic = { budget_usd = 100 } } }\n"
)
RENDERED = "{ doc = local.budget_document, env = local.slack_webhook_env, secrets = local.slack_secrets }"


@needs_terraform
def test_example_with_teams_and_destinations_renders_a_document_the_code_parses(tmp_path: Path) -> None:
    """BUDGET_CONFIG from terraform.tfvars.example has its teams, dollar thresholds, notify lists,
    weekly report and one webhook_secret per destination, and config parses it as written."""
    got = _console_json(tmp_path, _example_tfvars_text(), RENDERED)
    doc = got["doc"]
    assert doc == _budget_document(_example_tfvars())
    parsed = config.parse_budget_config(json.dumps(doc), origin="locals.budget_document")
    assert parsed.destination_names() == ("finops", "search", "support")
    assert parsed.default_dest == "finops"
    assert set(parsed.teams) == {"search", "support"}
    search = parsed.teams["search"]
    assert search.notify == ("search",) and search.thresholds_usd == (Decimal(1000),)
    assert {p: m.ids() for p, m in search.match.blocks().items()} == {
        "openai": frozenset({"proj_search01"}),
        "anthropic": frozenset({"wrkspc_01SearchRanking"}),
        "gemini": frozenset({"search-prod-4711"}),
    }
    assert parsed.teams["support"].match.blocks()["xai"].accounts == ()  # the whole xAI account
    assert parsed.thresholds_usd == (Decimal(2500),)
    assert parsed.weekly_report is not None and parsed.weekly_report.destinations == ("finops",)
    # Every destination reads a secret Terraform creates, and SLACK_WEBHOOK_SECRET is not set.
    assert got["env"] == {}
    created = {s["secret_id"] for s in got["secrets"].values()}
    assert created == {
        "llm-budget-slack-finops-webhook",
        "llm-budget-slack-search-webhook",
        "llm-budget-slack-support-webhook",
    }
    for name, dest in parsed.destinations.items():
        assert dest.webhook_secret and config.SECRET_NAME_RE.match(dest.webhook_secret)
        assert dest.webhook_secret.split("/")[3] == got["secrets"][name]["secret_id"]
        assert dest.webhook_env is None
    assert got["secrets"]["search"]["description"] == "#search-alerts"
    # The function's environment as Terraform sets it (no SLACK_WEBHOOK_SECRET) is one config accepts.
    settings = config.Settings.from_env({"BUDGET_CONFIG": json.dumps(doc), **got["env"]})
    assert settings.slack_webhook_secret is None and settings.budgets.default_dest == "finops"


@needs_terraform
def test_without_destinations_the_single_webhook_secret_stays(tmp_path: Path) -> None:
    """No slack_destinations: one secret (slack_webhook_secret_id or <prefix>-slack-webhook), read
    through SLACK_WEBHOOK_SECRET, and no destinations in BUDGET_CONFIG: as before teams existed."""
    got = _console_json(tmp_path / "a", MINIMAL, RENDERED)
    assert got["secrets"] == {"default": {"secret_id": "llm-budget-slack-webhook", "description": None}}
    assert got["env"] == {
        "SLACK_WEBHOOK_SECRET": "projects/acme-llm-budget/secrets/llm-budget-slack-webhook/versions/latest"
    }
    assert "destinations" not in got["doc"] and "teams" not in got["doc"]
    settings = config.Settings.from_env({"BUDGET_CONFIG": json.dumps(got["doc"]), **got["env"]})
    assert settings.budgets.destination_names() == ("default",)
    custom = _console_json(tmp_path / "b", MINIMAL + 'slack_webhook_secret_id = "team-slack"\n', RENDERED)
    assert custom["secrets"]["default"]["secret_id"] == "team-slack"
    assert custom["env"]["SLACK_WEBHOOK_SECRET"].endswith("/secrets/team-slack/versions/latest")


def test_the_webhook_secret_of_an_existing_deployment_is_moved_not_replaced() -> None:
    """The unkeyed webhook secret and its grant of a pre-destinations state become the "default"
    instances, the key local.slack_secrets gives the one webhook (so an upgrade keeps its versions)."""
    with (Path(__file__).resolve().parents[1] / "terraform" / "secrets.tf").open(encoding="utf-8") as f:
        moved = dict(hcl2.load(f, serialization_options=HCL_OPTIONS))["moved"]
    assert {(m["from"], m["to"]) for m in moved} == {
        (f"${{{address}}}", f'${{{address}["default"]}}')
        for address in (
            "google_secret_manager_secret.slack_webhook",
            "google_secret_manager_secret_iam_member.slack_webhook_runtime",
        )
    }


@needs_terraform
def test_one_destination_needs_no_default_destination(tmp_path: Path) -> None:
    """A single destination is the default one; budgets may notify it; the code agrees."""
    tfvars = (
        'project_id = "acme-llm-budget"\nslack_destinations = { ops = {} }\n'
        'budgets = { total_budget_usd = 100, providers = { anthropic = { budget_usd = 100, notify = ["ops"] } } }\n'
    )
    got = _console_json(tmp_path, tfvars, RENDERED)
    assert got["env"] == {}
    assert got["secrets"] == {"ops": {"secret_id": "llm-budget-slack-ops-webhook", "description": None}}
    parsed = config.parse_budget_config(json.dumps(got["doc"]), origin="one destination")
    assert parsed.default_dest == "ops" and parsed.configured()["anthropic"].notify == ("ops",)


@needs_terraform
def test_allow_overlap_admits_a_shared_project_in_both(tmp_path: Path) -> None:
    """With allow_overlap = true, two teams on one OpenAI project pass Terraform and the code."""
    text = _example_tfvars_text().replace("proj_support01", "proj_search01", 1)
    text = text.replace("copy_all_to_default = false", "copy_all_to_default = false\n  allow_overlap = true", 1)
    doc = _console_json(tmp_path, text, "local.budget_document")
    parsed = config.parse_budget_config(json.dumps(doc), origin="allow_overlap")
    assert parsed.allow_overlap is True


# (id, pattern in terraform.tfvars.example, replacement, what Terraform says)
TEAM_BAD_INPUTS = [
    ("overlap", "proj_support01", "proj_search01", '"search" and "support" both match openai/prod proj_search01'),
    (
        "whole-account overlap",
        'project_ids = ["proj_support01"], ',
        "",
        '"search" and "support" both match openai/prod: each spend must belong to one team',
    ),
    ("project id", "proj_search01", "search-prod", "openai.project_ids must be OpenAI project ids"),
    ("workspace id", "wrkspc_01SearchRanking", "Search Ranking", "anthropic.workspace_ids must be workspace ids"),
    ("gcp project id", "search-prod-4711", "Search", "gemini.project_ids must be Google Cloud project ids"),
    (
        "unknown account",
        'accounts = ["prod"], project_ids = ["proj_search01"]',
        'accounts = ["prd"], project_ids = ["proj_search01"]',
        'teams.search.match.openai.accounts: "prd" must be an account label of providers.openai '
        "(accounts: prod, research)",
    ),
    (
        "unconfigured provider",
        "xai       = {} #",
        "bedrock = {} #",
        "teams.support.match.bedrock: providers.bedrock is not configured",
    ),
    (
        "reserved team",
        "support = {\n      budget_usd",
        "unassigned = {\n      budget_usd",
        'not "unassigned" or "total"',
    ),
    ("team budget", "budget_usd     = 1500", "budget_usd     = 0", "budgets.teams.*.budget_usd must be"),
    (
        "unknown destination",
        'notify         = ["search"]',
        'notify         = ["serch"]',
        'teams.search.notify: "serch" must be a destination: a key of slack_destinations (finops, search, support)',
    ),
    (
        "unknown account destination",
        'notify = ["search"] }',
        'notify = ["research"] }',
        'providers.openai.accounts[1].notify: "research" must be a destination',
    ),
    (
        "unknown weekly destination",
        'destinations = ["finops"]',
        'destinations = ["fin-ops"]',
        'weekly_report.destinations: "fin-ops" must be a destination',
    ),
    (
        "no default destination",
        'default_destination = "finops"',
        "default_destination = null",
        "budgets.default_destination must name one of slack_destinations (finops, search, support), "
        "and is required with several",
    ),
    ("weekday", 'weekday      = "monday"', 'weekday      = "Monday"', "weekday must be one of monday"),
    (
        "dollar threshold",
        "thresholds_usd          = [2500]",
        "thresholds_usd          = [0]",
        "thresholds_usd (of budgets",
    ),
    ("empty pattern", '["gpt-5*"]', '[" "]', "must be non-empty case-sensitive globs"),
    (
        "destination name",
        "  search  = { description",
        "  Search  = { description",
        "slack_destinations: names must be 1-40",
    ),
]


def _mutated(pattern: str, replacement: str) -> str:
    text = _example_tfvars_text()
    assert pattern in text, f"{pattern!r} not in terraform.tfvars.example"
    return text.replace(pattern, replacement, 1)


@needs_terraform
@pytest.mark.parametrize(
    ("pattern", "replacement", "message"), [c[1:] for c in TEAM_BAD_INPUTS], ids=[c[0] for c in TEAM_BAD_INPUTS]
)
def test_bad_team_or_destination_input_is_rejected_with_its_fix(
    tmp_path: Path, pattern: str, replacement: str, message: str
) -> None:
    """terraform rejects a broken team or destination with a message naming the field and the fix."""
    _, stderr = _console(tmp_path, _mutated(pattern, replacement), "local.function_name")
    flat = " ".join(stderr.split())
    assert "Invalid value for variable" in flat
    assert message in flat, flat[-600:]


@pytest.mark.parametrize(
    ("pattern", "replacement", "message"), [c[1:] for c in TEAM_BAD_INPUTS], ids=[c[0] for c in TEAM_BAD_INPUTS]
)
def test_the_code_rejects_what_terraform_rejects(pattern: str, replacement: str, message: str) -> None:
    """Each input Terraform refuses is refused by config.parse_budget_config as well (same rules)."""
    tfvars = dict(hcl2.loads(_mutated(pattern, replacement), serialization_options=HCL_OPTIONS))
    document = _budget_document(tfvars)
    with pytest.raises(config.ConfigError):
        config.parse_budget_config(json.dumps(document), origin="mutated example")
