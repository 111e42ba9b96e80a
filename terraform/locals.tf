# Names and documents derived from the variables alone.
#
# This file references variables and path.module only (no resources, no data sources), so
# tests/test_terraform.py can evaluate it with `terraform console` and hand the resulting
# BUDGET_CONFIG to config.BudgetConfig. Keep it that way.

locals {
  # --- sizing (see README "Running cost"; the benchmarks measure < 150 MB peak RSS) ---------------
  check_deadline_seconds   = 60  # CHECK_DEADLINE_SECONDS: the check's own overall deadline
  function_timeout_seconds = 120 # above the check's worst case, so the check times out first
  scheduler_deadline       = "${local.function_timeout_seconds + 30}s"

  # Cloud Scheduler is offered in fewer regions than Cloud Run functions; the job may live
  # elsewhere (it calls the function's HTTPS URL, and stays "internal" for ingress: same project).
  scheduler_region = coalesce(var.scheduler_region, var.region)

  # --- monitoring (monitoring.tf) ---------------------------------------------------------------
  # The line run_check writes at the end of every check that got past the alert state (check.py,
  # logs.JsonFormatter), as Cloud Logging stores it for a gen2 function: resource cloud_run_revision
  # labelled with the service (= function) name, the JSON object in jsonPayload, and its "severity"
  # field moved to the entry's severity (cloud.google.com/logging/docs/structured-logging, special
  # JSON fields). tests/test_terraform_monitoring.py evaluates this filter against real lines.
  checks_completed_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${local.function_name}\"",
    "jsonPayload.logger=\"llm_budget_alert.check\"",
    "jsonPayload.message=\"check finished\"",
    "severity=INFO",
  ])
  deadman_window = "${var.deadman_window_hours * 3600}s"

  # --- names -------------------------------------------------------------------------------------
  function_name      = "${var.name_prefix}-check"
  scheduler_job_name = "${var.name_prefix}-hourly"
  doctor_job_name    = "${var.name_prefix}-doctor"
  state_bucket_name  = "${var.project_id}-${var.name_prefix}-state"
  source_bucket_name = "${var.project_id}-${var.name_prefix}-source"
  repository_id      = "${var.name_prefix}-functions"
  slack_secret_id    = coalesce(var.slack_webhook_secret_id, "${var.name_prefix}-slack-webhook")

  # --- one Secret Manager secret per Slack destination -------------------------------------------
  # Without slack_destinations: the one webhook secret (slack_secret_id), destination "default",
  # which the function reads through SLACK_WEBHOOK_SECRET. With them: one secret per destination,
  # named in BUDGET_CONFIG's destinations, and no SLACK_WEBHOOK_SECRET (config refuses both).
  # "search" => { secret_id = "llm-budget-slack-search-webhook", description = "#search-alerts" }
  slack_secrets = {
    for name in(length(var.slack_destinations) > 0 ? keys(var.slack_destinations) : ["default"]) : name => {
      secret_id   = length(var.slack_destinations) > 0 ? "${var.name_prefix}-slack-${name}-webhook" : local.slack_secret_id
      description = try(var.slack_destinations[name].description, null)
    }
  }
  slack_webhook_env = length(var.slack_destinations) > 0 ? {} : {
    SLACK_WEBHOOK_SECRET = "projects/${var.project_id}/secrets/${local.slack_secret_id}/versions/latest"
  }

  # --- one Secret Manager secret per keyed account -----------------------------------------------
  # Providers whose accounts authenticate with an admin key; gemini reads BigQuery as the runtime
  # service account instead. The suffix says what kind of key belongs in the secret.
  # A bedrock account with role_arn uses federation (terraform/aws/) and gets no secret; without it,
  # its secret holds an AWS key pair as JSON.
  key_suffix = {
    openai     = "admin-key"
    anthropic  = "admin-key"
    xai        = "management-key"
    bedrock    = "aws-key-pair"
    openrouter = "management-key"
  }

  configured_providers = { for name, p in var.budgets.providers : name => p if p != null }

  # "openai/default" => { provider = "openai", label = "default", secret_id = "llm-budget-openai-default-admin-key" }
  keyed_accounts = merge([
    for name, p in local.configured_providers : {
      for a in p.accounts : "${name}/${a.label}" => {
        provider  = name
        label     = a.label
        secret_id = "${var.name_prefix}-${name}-${a.label}-${local.key_suffix[name]}"
      } if try(a.role_arn, null) == null
    } if contains(keys(local.key_suffix), name)
  ]...)

  # --- billing export datasets the runtime service account reads ---------------------------------
  # "billing-proj.billing_export" => { project = "billing-proj", dataset_id = "billing_export" }
  export_datasets = {
    for key in distinct([
      for a in try(local.configured_providers.gemini.accounts, []) :
      join(".", slice(split(".", a.billing_export_table), 0, 2))
    ]) : key => { project = split(".", key)[0], dataset_id = split(".", key)[1] }
  }

  # --- the budget document (BUDGET_CONFIG) -------------------------------------------------------
  # var.budgets as config.BudgetConfig expects it: every keyed account gets the key_secret of the
  # secret created for it, every Slack destination its webhook_secret, and nulls are dropped at
  # every level so config.py's defaults apply (the schema rejects null for most optional fields).
  budget_document = {
    for k, v in {
      total_budget_usd          = var.budgets.total_budget_usd
      thresholds_pct            = var.budgets.thresholds_pct
      forecast_thresholds_pct   = var.budgets.forecast_thresholds_pct
      thresholds_usd            = var.budgets.thresholds_usd
      failure_notice_after_runs = var.budgets.failure_notice_after_runs
      digest                    = var.budgets.digest == null ? null : { for dk, dv in var.budgets.digest : dk => dv if dv != null }
      spike                     = var.budgets.spike == null ? null : { for sk, sv in var.budgets.spike : sk => sv if sv != null }
      allow_overlap             = var.budgets.allow_overlap
      default_destination       = var.budgets.default_destination
      copy_all_to_default       = var.budgets.copy_all_to_default
      weekly_report             = var.budgets.weekly_report == null ? null : { for wk, wv in var.budgets.weekly_report : wk => wv if wv != null }
      destinations = length(var.slack_destinations) == 0 ? null : {
        for name, s in local.slack_secrets : name => {
          webhook_secret = "projects/${var.project_id}/secrets/${s.secret_id}/versions/latest"
        }
      }
      providers = {
        for name, p in local.configured_providers : name => {
          for pk, pv in {
            budget_usd     = p.budget_usd
            thresholds_usd = p.thresholds_usd
            notify         = p.notify
            accounts = [
              for a in p.accounts : {
                for ak, av in merge(a, {
                  key_secret = contains(keys(local.keyed_accounts), "${name}/${a.label}") ? "projects/${var.project_id}/secrets/${local.keyed_accounts["${name}/${a.label}"].secret_id}/versions/latest" : null
                }) : ak => av if av != null
              }
            ]
          } : pk => pv if pv != null
        }
      }
      teams = length(var.budgets.teams) == 0 ? null : {
        for name, t in var.budgets.teams : name => {
          for tk, tv in merge(t, {
            match = {
              for mp, m in t.match : mp => { for mk, mv in m : mk => mv if mv != null } if m != null
            }
          }) : tk => tv if tv != null
        }
      }
    } : k => v if v != null
  }

  # --- what goes into the function's source archive ----------------------------------------------
  # Deployed: main.py and the other top-level *.py modules, the packages below, requirements.txt.
  # archive_file only knows excludes, so everything else at the top level is listed as excluded:
  # the top-level files and directories found on disk at plan time, plus the known ones (tests/,
  # terraform/, bench/, simulator/, ...) in case they are absent or deeper than the walk, plus
  # caches anywhere.
  source_root     = abspath("${path.module}/..")
  source_packages = ["alerts", "config", "providers"]
  source_known_excludes = [
    ".checkov.yaml", ".ci", ".git", ".github", ".gitignore", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".run", ".state", ".venv", ".venv-checkov", "Makefile", "README.md", "bench",
    "build", "conftest.py", "devservers", "dist", "docs", "requirements-dev.txt", "scripts",
    "simulator", "terraform", "tests", "tools",
  ]
  source_excludes = sort(distinct(concat(
    # top-level files other than *.py modules and requirements.txt
    [for f in fileset(local.source_root, "*") : f if !endswith(f, ".py") && f != "requirements.txt"],
    # top-level directories other than the packages, seen through any file up to three levels down
    # (a bounded walk: "**" would list every file of .git and the virtualenvs at each plan)
    [
      for d in distinct([
        for f in setunion(fileset(local.source_root, "*/*"), fileset(local.source_root, "*/*/*"), fileset(local.source_root, "*/*/*/*")) :
        split("/", f)[0]
      ]) : d if !contains(local.source_packages, d)
    ],
    [for e in local.source_known_excludes : e if !contains(local.source_packages, e)],
    ["**/__pycache__", "**/*.pyc", "**/.DS_Store"],
  )))
}
