# Inputs, in alphabetical order. Every validation message says how to fix the value.
# The budget document itself is validated again by config.BudgetConfig when the function starts;
# the checks here catch the same mistakes at `terraform plan`, before anything is deployed.

variable "alert_emails" {
  description = "Email addresses Cloud Monitoring notifies when no check has completed, or none has completed cleanly, for deadman_window_hours (monitoring.tf). Each gets its own email notification channel. Give at least one, or alert_notification_channels."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails must be plain email addresses, e.g. [\"oncall@example.com\"] (no display names, no commas inside one entry)."
  }

  validation {
    condition     = length(distinct(var.alert_emails)) == length(var.alert_emails)
    error_message = "alert_emails must be distinct addresses: list each address once and remove the duplicate."
  }
}

variable "alert_notification_channels" {
  description = "Existing Cloud Monitoring notification channels (Slack, PagerDuty, SMS, webhooks...) to notify as well, by full name: projects/PROJECT/notificationChannels/ID (`gcloud beta monitoring channels list --format='value(name)'`). Prefer one that does not depend on the Slack webhook this function posts to."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$", c))])
    error_message = "alert_notification_channels entries must be full channel names, e.g. \"projects/acme-llm-budget/notificationChannels/1234567890\" (gcloud beta monitoring channels list --format='value(name)')."
  }
}

variable "anthropic_base_url" {
  description = "Base URL of the Anthropic Admin API (cost_report). Change it only to route through a proxy."
  type        = string
  default     = "https://api.anthropic.com"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$", var.anthropic_base_url))
    error_message = "anthropic_base_url must be an https:// URL without a trailing slash, e.g. https://api.anthropic.com (the default)."
  }
}

variable "aws_cost_explorer_base_url" {
  description = "Base URL of AWS Cost Explorer (GetCostAndUsage, us-east-1). Change it only to route through a proxy."
  type        = string
  default     = "https://ce.us-east-1.amazonaws.com"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$", var.aws_cost_explorer_base_url))
    error_message = "aws_cost_explorer_base_url must be an https:// URL without a trailing slash, e.g. https://ce.us-east-1.amazonaws.com (the default)."
  }
}

variable "budgets" {
  description = <<-EOT
    The budget document (config.BudgetConfig) without keys or webhooks: monthly USD budgets, alert
    thresholds (percentages and dollar amounts), the accounts of each provider, the teams and where
    each budget's alerts go. Terraform adds each keyed account's key_secret and each Slack
    destination's webhook_secret (the Secret Manager secrets it creates; destinations come from
    var.slack_destinations) and passes the result to the function as BUDGET_CONFIG.
    Optional settings left null are omitted, so config.py's defaults apply (thresholds 50/80/100 %,
    forecast 100 %, digest at 09 UTC, spike factor 2 over a 7-day baseline, failure notice after 2 runs).
    openai/anthropic accounts default to one account labelled "default"; xai needs team_id;
    gemini needs the Cloud Billing export table (project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX).
    bedrock accounts with role_arn read Cost Explorer through federation (terraform/aws/, no secret);
    without it they get an AWS key pair secret. openrouter accounts get a management key secret.
    teams: a monthly budget over a slice of spend across providers (match: OpenAI projects and line
    items, Anthropic workspaces, descriptions and models, Gemini projects and SKUs, whole accounts of
    the others); notify: the destinations (keys of slack_destinations) a budget's alerts go to.
  EOT
  type = object({
    total_budget_usd          = number
    thresholds_pct            = optional(list(number))
    forecast_thresholds_pct   = optional(list(number))
    thresholds_usd            = optional(list(number))
    failure_notice_after_runs = optional(number)
    digest = optional(object({
      enabled  = optional(bool)
      hour_utc = optional(number)
    }))
    spike = optional(object({
      factor        = optional(number)
      min_usd       = optional(number)
      baseline_days = optional(number)
    }))
    allow_overlap       = optional(bool)
    default_destination = optional(string)
    copy_all_to_default = optional(bool)
    weekly_report = optional(object({
      weekday      = optional(string)
      hour_utc     = optional(number)
      destinations = optional(list(string))
      top          = optional(number)
    }))
    providers = object({
      openai = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = optional(list(object({
          label          = optional(string, "default")
          budget_usd     = optional(number)
          thresholds_usd = optional(list(number))
          notify         = optional(list(string))
        })), [{}])
      }))
      anthropic = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = optional(list(object({
          label          = optional(string, "default")
          budget_usd     = optional(number)
          thresholds_usd = optional(list(number))
          notify         = optional(list(string))
        })), [{}])
      }))
      xai = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = list(object({
          label          = optional(string, "default")
          budget_usd     = optional(number)
          thresholds_usd = optional(list(number))
          notify         = optional(list(string))
          team_id        = string
        }))
      }))
      gemini = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = list(object({
          label                = optional(string, "default")
          budget_usd           = optional(number)
          thresholds_usd       = optional(list(number))
          notify               = optional(list(string))
          billing_export_table = string
          service_ids          = optional(list(string))
          maximum_bytes_billed = optional(number)
          late_row_margin_days = optional(number)
        }))
      }))
      bedrock = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = optional(list(object({
          label             = optional(string, "default")
          budget_usd        = optional(number)
          thresholds_usd    = optional(list(number))
          notify            = optional(list(string))
          role_arn          = optional(string)
          audience          = optional(string)
          metric            = optional(string)
          breakdown         = optional(string)
          linked_account    = optional(string)
          fetch_every_hours = optional(number)
        })), [{}])
      }))
      openrouter = optional(object({
        budget_usd     = number
        thresholds_usd = optional(list(number))
        notify         = optional(list(string))
        accounts = optional(list(object({
          label          = optional(string, "default")
          budget_usd     = optional(number)
          thresholds_usd = optional(list(number))
          notify         = optional(list(string))
          workspace_ids  = optional(list(string))
        })), [{}])
      }))
    })
    # Team name => its budget. match: one optional block per provider; a block's selectors AND
    # together, and a block with none takes the whole of its accounts (default: every account).
    teams = optional(map(object({
      budget_usd              = number
      thresholds_pct          = optional(list(number))
      forecast_thresholds_pct = optional(list(number))
      thresholds_usd          = optional(list(number))
      notify                  = optional(list(string))
      match = object({
        openai = optional(object({
          accounts           = optional(list(string))
          project_ids        = optional(list(string))
          line_item_patterns = optional(list(string))
        }))
        anthropic = optional(object({
          accounts             = optional(list(string))
          workspace_ids        = optional(list(string))
          description_patterns = optional(list(string))
          model_patterns       = optional(list(string))
        }))
        xai = optional(object({
          accounts = optional(list(string))
        }))
        gemini = optional(object({
          accounts     = optional(list(string))
          project_ids  = optional(list(string))
          sku_patterns = optional(list(string))
        }))
        bedrock = optional(object({
          accounts = optional(list(string))
        }))
        openrouter = optional(object({
          accounts = optional(list(string))
        }))
      })
    })), {})
  })

  validation {
    condition     = var.budgets.total_budget_usd > 0
    error_message = "budgets.total_budget_usd must be a positive monthly amount in US dollars, e.g. total_budget_usd = 1000."
  }

  validation {
    condition = alltrue([
      for p in concat(coalesce(var.budgets.thresholds_pct, [50]), coalesce(var.budgets.forecast_thresholds_pct, [100])) :
      p > 0 && p <= 1000
    ])
    error_message = "budgets.thresholds_pct and budgets.forecast_thresholds_pct are percentages of budget with 0 < p <= 1000, e.g. thresholds_pct = [50, 80, 100]."
  }

  validation {
    condition     = length([for p in values(var.budgets.providers) : p if p != null]) > 0
    error_message = "budgets.providers: configure at least one of openai, anthropic, xai, gemini, bedrock, openrouter, e.g. providers = { openai = { budget_usd = 500 } }."
  }

  validation {
    condition = alltrue(flatten([
      for p in values(var.budgets.providers) : p == null ? [true] : concat(
        [p.budget_usd > 0],
        [for a in p.accounts : a.budget_usd == null ? true : a.budget_usd > 0],
      )
    ]))
    error_message = "Every configured provider needs budget_usd > 0 (monthly USD), and an account's optional budget_usd must be > 0 too (or left out)."
  }

  validation {
    condition = alltrue([
      for p in values(var.budgets.providers) : p == null ? true : (
        length(p.accounts) > 0
        && alltrue([for a in p.accounts : can(regex("^[a-z0-9][a-z0-9_-]{0,39}$", a.label))])
        && length(distinct([for a in p.accounts : a.label])) == length(p.accounts)
      )
    ])
    error_message = "Each provider lists at least one account, and account labels are unique within a provider and 1-40 characters of lowercase letters, digits, '-' or '_' (they name the Secret Manager secrets), e.g. label = \"prod\"."
  }

  validation {
    condition = var.budgets.providers.xai == null ? true : alltrue([
      for a in var.budgets.providers.xai.accounts : length(trimspace(a.team_id)) > 0
    ])
    error_message = "budgets.providers.xai.accounts[*].team_id must be the xAI team id (xAI Console -> Settings -> Team ID)."
  }

  validation {
    condition = var.budgets.providers.gemini == null ? true : alltrue([
      for a in var.budgets.providers.gemini.accounts :
      can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]\\.[A-Za-z0-9_]+\\.gcp_billing_export_(resource_)?v1_[0-9A-F]{6}_[0-9A-F]{6}_[0-9A-F]{6}$", a.billing_export_table))
    ])
    error_message = "budgets.providers.gemini.accounts[*].billing_export_table must be project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX (the standard usage cost export table; copy its id from BigQuery), e.g. my-billing-proj.billing_export.gcp_billing_export_v1_01ABCD_234567_89ABCD."
  }

  validation {
    condition = var.budgets.providers.gemini == null ? true : alltrue(flatten([
      for a in var.budgets.providers.gemini.accounts : [
        a.service_ids == null ? true : length(a.service_ids) > 0 && alltrue([for s in a.service_ids : can(regex("^[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}$", s))]),
        a.maximum_bytes_billed == null ? true : a.maximum_bytes_billed > 0 && floor(a.maximum_bytes_billed) == a.maximum_bytes_billed,
        a.late_row_margin_days == null ? true : a.late_row_margin_days >= 0 && a.late_row_margin_days <= 35,
      ]
    ]))
    error_message = "Gemini accounts: service_ids must be Cloud Billing service ids, e.g. [\"AEFD-7695-64FA\", \"C7E2-9256-1C43\"] (Gemini API, Vertex AI); maximum_bytes_billed must be a positive whole number of bytes, e.g. 5368709120; late_row_margin_days must be 0-35."
  }

  validation {
    condition = alltrue([
      var.budgets.digest == null ? true : (
        var.budgets.digest.hour_utc == null ? true : (
          var.budgets.digest.hour_utc >= 0 && var.budgets.digest.hour_utc <= 23 && floor(var.budgets.digest.hour_utc) == var.budgets.digest.hour_utc
        )
      ),
      var.budgets.failure_notice_after_runs == null ? true : (
        var.budgets.failure_notice_after_runs >= 1 && var.budgets.failure_notice_after_runs <= 48
      ),
    ])
    error_message = "budgets.digest.hour_utc must be the UTC hour (0-23) at which the hourly check also sends the daily digest, e.g. 9; budgets.failure_notice_after_runs must be 1-48 consecutive failed runs, e.g. 2."
  }

  validation {
    condition = var.budgets.spike == null ? true : alltrue([
      var.budgets.spike.factor == null ? true : var.budgets.spike.factor > 1,
      var.budgets.spike.min_usd == null ? true : var.budgets.spike.min_usd >= 0,
      var.budgets.spike.baseline_days == null ? true : var.budgets.spike.baseline_days >= 3 && var.budgets.spike.baseline_days <= 28,
    ])
    error_message = "budgets.spike: factor must be > 1 (e.g. 2 = today at twice the baseline), min_usd >= 0, baseline_days 3-28."
  }

  validation {
    condition = alltrue(flatten([
      [for u in coalesce(var.budgets.thresholds_usd, []) : u >= 0.01 && u <= 1000000000000],
      [for p in values(var.budgets.providers) : p == null ? [true] : concat(
        [for u in coalesce(p.thresholds_usd, []) : u >= 0.01 && u <= 1000000000000],
        flatten([for a in p.accounts : [for u in coalesce(a.thresholds_usd, []) : u >= 0.01 && u <= 1000000000000]]),
      )],
      [for t in values(var.budgets.teams) : [for u in coalesce(t.thresholds_usd, []) : u >= 0.01 && u <= 1000000000000]],
    ]))
    error_message = "thresholds_usd (of budgets, a provider, an account or a team) must list month-to-date amounts in US dollars from 0.01 to 1000000000000, each alerting once a month, e.g. thresholds_usd = [500, 1000]."
  }

  # --- teams (config/_teams.py checks the same at load time) ------------------------------------

  validation {
    condition = alltrue([
      for name in keys(var.budgets.teams) : can(regex("^[a-z0-9][a-z0-9_-]{0,39}$", name)) && !contains(["unassigned", "total"], name)
    ])
    error_message = "budgets.teams: team names must be 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit, and not \"unassigned\" or \"total\" (they name the spend no team owns and the total), e.g. teams = { search = { ... } }."
  }

  validation {
    condition = alltrue(flatten([
      for t in values(var.budgets.teams) : concat(
        [t.budget_usd >= 0.01 && t.budget_usd <= 1000000000000],
        [for p in concat(coalesce(t.thresholds_pct, []), coalesce(t.forecast_thresholds_pct, [])) : p > 0 && p <= 1000],
      )
    ]))
    error_message = "budgets.teams.*.budget_usd must be a monthly amount in US dollars from 0.01, e.g. budget_usd = 2000; a team's thresholds_pct and forecast_thresholds_pct are percentages of its budget with 0 < p <= 1000 (left out: the document's), e.g. thresholds_pct = [80, 100]."
  }

  # Every team selects some spend, of configured providers, on accounts they have.
  validation {
    condition = length(flatten([
      for tname, t in var.budgets.teams : concat(
        length([for p, m in t.match : p if m != null]) == 0 ? [tname] : [],
        flatten([
          for p, m in t.match : m == null ? [] : var.budgets.providers[p] == null ? [p] : [
            for l in coalesce(m.accounts, []) : l if !contains([for a in var.budgets.providers[p].accounts : a.label], l)
          ]
        ]),
      )
    ])) == 0
    error_message = format("budgets.%s.", join("; ", flatten([
      for tname, t in var.budgets.teams : concat(
        length([for p, m in t.match : p if m != null]) == 0 ? ["teams.${tname}.match: select some spend: give at least one of openai, anthropic, xai, gemini, bedrock, openrouter, with accounts, ids or patterns"] : [],
        flatten([
          for p, m in t.match : m == null ? [] : var.budgets.providers[p] == null ? ["teams.${tname}.match.${p}: providers.${p} is not configured, so nothing can match it: configure it or remove the block"] : [
            for l in coalesce(m.accounts, []) : "teams.${tname}.match.${p}.accounts: ${jsonencode(l)} must be an account label of providers.${p} (accounts: ${join(", ", [for a in var.budgets.providers[p].accounts : a.label])})"
            if !contains([for a in var.budgets.providers[p].accounts : a.label], l)
          ]
        ]),
      )
    ])))
  }

  # The id formats of providers/openai.py (PROJECT_ID_RE), anthropic.py (WORKSPACE_ID_RE) and
  # gemini.py (PROJECT_ID_RE); tests/test_terraform.py holds each regex equal to the code's.
  validation {
    condition = alltrue(flatten([
      for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.openai.project_ids, null), []) : can(regex("^proj_[A-Za-z0-9_]{1,64}$", id))]
    ]))
    error_message = format("budgets.teams.*.match.openai.project_ids must be OpenAI project ids from platform.openai.com -> Settings -> Projects, e.g. project_ids = [\"proj_abc123\"] (not the project name); not ids: %s.", join(", ", flatten([for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.openai.project_ids, null), []) : jsonencode(id) if !can(regex("^proj_[A-Za-z0-9_]{1,64}$", id))]])))
  }

  validation {
    condition = alltrue(flatten([
      for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.anthropic.workspace_ids, null), []) : id == "default" || can(regex("^wrkspc_[A-Za-z0-9]{1,64}$", id))]
    ]))
    error_message = format("budgets.teams.*.match.anthropic.workspace_ids must be workspace ids from console.anthropic.com -> Settings -> Workspaces, e.g. workspace_ids = [\"wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ\"], or \"default\" for the default workspace; not ids: %s.", join(", ", flatten([for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.anthropic.workspace_ids, null), []) : jsonencode(id) if !(id == "default" || can(regex("^wrkspc_[A-Za-z0-9]{1,64}$", id)))]])))
  }

  validation {
    condition = alltrue(flatten([
      for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.gemini.project_ids, null), []) : can(regex("^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", id))]
    ]))
    error_message = format("budgets.teams.*.match.gemini.project_ids must be Google Cloud project ids (6-30 lowercase letters, digits or hyphens, starting with a letter; not the name or number), e.g. project_ids = [\"llm-prod-123456\"]; not ids: %s.", join(", ", flatten([for t in values(var.budgets.teams) : [for id in coalesce(try(t.match.gemini.project_ids, null), []) : jsonencode(id) if !can(regex("^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", id))]])))
  }

  validation {
    condition = alltrue(flatten([
      for t in values(var.budgets.teams) : [
        for pattern in concat(
          coalesce(try(t.match.openai.line_item_patterns, null), []),
          coalesce(try(t.match.anthropic.description_patterns, null), []),
          coalesce(try(t.match.anthropic.model_patterns, null), []),
          coalesce(try(t.match.gemini.sku_patterns, null), []),
        ) : length(trimspace(pattern)) > 0 && length(pattern) <= 200
      ]
    ]))
    error_message = "budgets.teams.*.match: line_item_patterns, description_patterns, model_patterns and sku_patterns must be non-empty case-sensitive globs of at most 200 characters, e.g. model_patterns = [\"claude-opus-*\"]."
  }

  # Two teams overlap when, on one account, either takes all of it or both name one id
  # (config/_teams.py _check_overlap). `[for reach in [X] : ...][0]` binds X once.
  validation {
    condition = var.budgets.allow_overlap == true || length([for reach in [{
      for tname, t in var.budgets.teams : tname => {
        for p, m in t.match : p => {
          for label in(length(coalesce(m.accounts, [])) > 0 ? m.accounts : [for a in var.budgets.providers[p].accounts : a.label]) :
          label => [for ids in [coalesce(try(m.project_ids, m.workspace_ids, null), [])] : length(ids) > 0 ? ids : null][0]
        } if m != null && var.budgets.providers[p] != null
      }
      }] : flatten([
      for i, a in keys(reach) : [
        for j, b in keys(reach) : [
          for p, la in reach[a] : [
            for label, ids_a in la : label if contains(keys(try(reach[b][p], {})), label) ? (
              ids_a == null || reach[b][p][label] == null ? true : length(setintersection(ids_a, reach[b][p][label])) > 0
            ) : false
          ]
        ] if i < j
      ]
    ])][0]) == 0
    error_message = format("budgets.teams: %s: each spend must belong to one team at most; remove it from one team's match, or set allow_overlap = true if counting it in both is intended.", join("; ", [for reach in [{
      for tname, t in var.budgets.teams : tname => {
        for p, m in t.match : p => {
          for label in(length(coalesce(m.accounts, [])) > 0 ? m.accounts : [for a in var.budgets.providers[p].accounts : a.label]) :
          label => [for ids in [coalesce(try(m.project_ids, m.workspace_ids, null), [])] : length(ids) > 0 ? ids : null][0]
        } if m != null && var.budgets.providers[p] != null
      }
      }] : flatten([
      for i, a in keys(reach) : [
        for j, b in keys(reach) : [
          for p, la in reach[a] : [
            for label, ids_a in la : format("%s and %s both match %s/%s%s", jsonencode(a), jsonencode(b), p, label, ids_a == null || reach[b][p][label] == null ? "" : format(" %s", sort(setintersection(ids_a, reach[b][p][label]))[0]))
            if contains(keys(try(reach[b][p], {})), label) ? (
              ids_a == null || reach[b][p][label] == null ? true : length(setintersection(ids_a, reach[b][p][label])) > 0
            ) : false
          ]
        ] if i < j
      ]
    ])][0]))
  }

  # --- routing and the weekly report --------------------------------------------------------------

  validation {
    condition = var.budgets.weekly_report == null ? true : alltrue([
      var.budgets.weekly_report.weekday == null ? true : contains(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], var.budgets.weekly_report.weekday),
      var.budgets.weekly_report.hour_utc == null ? true : var.budgets.weekly_report.hour_utc >= 0 && var.budgets.weekly_report.hour_utc <= 23 && floor(var.budgets.weekly_report.hour_utc) == var.budgets.weekly_report.hour_utc,
      var.budgets.weekly_report.top == null ? true : var.budgets.weekly_report.top >= 1 && var.budgets.weekly_report.top <= 20 && floor(var.budgets.weekly_report.top) == var.budgets.weekly_report.top,
    ])
    error_message = "budgets.weekly_report: weekday must be one of monday ... sunday (lower case), hour_utc the UTC hour 0-23 of that day's check that sends it, top the movers listed (1-20) before \"and N more\", e.g. weekly_report = { weekday = \"monday\", hour_utc = 8 }."
  }

  validation {
    condition     = var.budgets.default_destination == null ? length(var.slack_destinations) <= 1 : contains(length(var.slack_destinations) > 0 ? keys(var.slack_destinations) : ["default"], var.budgets.default_destination)
    error_message = format("budgets.default_destination must name one of slack_destinations (%s), and is required with several: the destination of whatever no budget routes elsewhere, e.g. default_destination = %s.", length(var.slack_destinations) > 0 ? join(", ", keys(var.slack_destinations)) : "none set, so the only destination is default", jsonencode(length(var.slack_destinations) > 0 ? keys(var.slack_destinations)[0] : "default"))
  }

  # Every notify (provider, account, team) and weekly_report.destinations names a destination.
  validation {
    condition = length([
      for n in flatten([
        var.budgets.weekly_report == null ? [] : coalesce(var.budgets.weekly_report.destinations, []),
        [for p in values(var.budgets.providers) : p == null ? [] : concat(coalesce(p.notify, []), flatten([for a in p.accounts : coalesce(a.notify, [])]))],
        [for t in values(var.budgets.teams) : coalesce(t.notify, [])],
      ]) : n if !contains(length(var.slack_destinations) > 0 ? keys(var.slack_destinations) : ["default"], n)
    ]) == 0
    error_message = format("budgets: %s must be a destination: a key of slack_destinations (%s).", join("; ", [
      for ref in flatten([
        var.budgets.weekly_report == null ? [] : [for n in coalesce(var.budgets.weekly_report.destinations, []) : { where = "weekly_report.destinations", name = n }],
        [for pname, p in var.budgets.providers : p == null ? [] : concat(
          [for n in coalesce(p.notify, []) : { where = "providers.${pname}.notify", name = n }],
          flatten([for i, a in p.accounts : [for n in coalesce(a.notify, []) : { where = "providers.${pname}.accounts[${i}].notify", name = n }]]),
        )],
        [for tname, t in var.budgets.teams : [for n in coalesce(t.notify, []) : { where = "teams.${tname}.notify", name = n }]],
      ]) : format("%s: %s", ref.where, jsonencode(ref.name)) if !contains(length(var.slack_destinations) > 0 ? keys(var.slack_destinations) : ["default"], ref.name)
    ]), length(var.slack_destinations) > 0 ? join(", ", keys(var.slack_destinations)) : "none set; add it there, e.g. slack_destinations = { search = {} }")
  }
}

variable "deadman_window_hours" {
  description = "Hours without a completed check (and, separately, without a clean one) after which Cloud Monitoring alerts: the dead-man's switch in monitoring.tf. The check runs hourly, so 3 tolerates two missed runs."
  type        = number
  default     = 3

  validation {
    condition     = floor(var.deadman_window_hours) == var.deadman_window_hours && var.deadman_window_hours >= 2 && var.deadman_window_hours <= 23
    error_message = "deadman_window_hours must be a whole number of hours from 2 (one missed hourly run) to 23 (Cloud Monitoring's metric-absence limit is 23.5 h), e.g. 3."
  }
}

variable "labels" {
  description = "Extra labels for every resource that supports labels (added to app = \"llm-budget-alert\")."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "labels: keys start with a lowercase letter; keys and values use at most 63 lowercase letters, digits, '_' or '-', e.g. { team = \"finops\" }."
  }
}

variable "log_level" {
  description = "Log level of the function (LOG_LEVEL): DEBUG, INFO, WARNING or ERROR. Logs never contain key values."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR (upper case)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (service accounts, function, job, secrets, buckets)."
  type        = string
  default     = "llm-budget"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters of lowercase letters, digits and '-', start with a letter and not end with '-' (service account ids built from it allow at most 30 characters), e.g. \"llm-budget\"."
  }
}

variable "openai_base_url" {
  description = "Base URL of the OpenAI Administration API (organization/costs). Change it only to route through a proxy."
  type        = string
  default     = "https://api.openai.com"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$", var.openai_base_url))
    error_message = "openai_base_url must be an https:// URL without a trailing slash, e.g. https://api.openai.com (the default)."
  }
}

variable "openrouter_base_url" {
  description = "Base URL of the OpenRouter API (activity, keys, credits). Change it only to route through a proxy."
  type        = string
  default     = "https://openrouter.ai/api/v1"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$", var.openrouter_base_url))
    error_message = "openrouter_base_url must be an https:// URL without a trailing slash, e.g. https://openrouter.ai/api/v1 (the default)."
  }
}

variable "project_id" {
  description = "Project that runs the function, holds the secrets and buckets, and pays for the BigQuery jobs (BIGQUERY_JOB_PROJECT)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (not its name or number): 6-30 lowercase letters, digits and '-', starting with a letter, e.g. \"acme-llm-budget\"."
  }
}

variable "region" {
  description = "Region of the function, the Artifact Registry repository, the buckets and (unless scheduler_region is set) the scheduler job."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1 (a region, not a zone like us-central1-a)."
  }
}

variable "runtime" {
  description = "Cloud Run functions Python runtime."
  type        = string
  default     = "python313"

  validation {
    condition     = contains(["python311", "python312", "python313", "python314"], var.runtime)
    error_message = "runtime must be one of python311, python312, python313, python314 (python313 is the default and what CI tests)."
  }
}

variable "schedule" {
  description = "unix-cron schedule of the check (5 fields). Hourly by default, at minute 7 to stay clear of the top-of-hour rush."
  type        = string
  default     = "7 * * * *"

  validation {
    condition     = can(regex("^[0-9*/,A-Za-z-]+( +[0-9*/,A-Za-z-]+){4}$", trimspace(var.schedule)))
    error_message = "schedule must be a 5-field unix-cron expression (minute hour day-of-month month day-of-week), e.g. \"7 * * * *\" for minute 7 of every hour."
  }
}

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler job, when Cloud Scheduler is not offered in `region` (its locations: https://cloud.google.com/scheduler/docs/locations). null (the default) uses `region`. The job calls the function's HTTPS URL, so any region works; it stays in this project, which internal-only ingress requires."
  type        = string
  default     = null

  validation {
    condition     = var.scheduler_region == null || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.scheduler_region))
    error_message = "scheduler_region must be null or a Cloud Scheduler region such as us-central1 or europe-west1 (a region, not a zone like us-central1-a)."
  }
}

variable "slack_destinations" {
  description = "Named Slack destinations, each an incoming webhook in its own Secret Manager secret \"<name_prefix>-slack-<name>-webhook\" (values added out of band, output secret_add_commands); budgets name them in notify, default_destination and weekly_report.destinations. {} (the default) keeps the single webhook secret of slack_webhook_secret_id, the destination \"default\". A value is {} or { description = \"...\" } (kept as the secret's annotation)."
  type = map(object({
    description = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.slack_destinations) : can(regex("^[a-z0-9][a-z0-9_-]{0,39}$", name))])
    error_message = "slack_destinations: names must be 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit (they name the secrets and the state keys), e.g. slack_destinations = { finops = {}, search = { description = \"#search-alerts\" } }."
  }

  validation {
    condition     = alltrue([for d in values(var.slack_destinations) : d.description == null ? true : length(d.description) <= 256 && !strcontains(d.description, "\n")])
    error_message = "slack_destinations.*.description must be one line of at most 256 characters, e.g. description = \"#search-alerts in the Acme workspace\"."
  }
}

variable "slack_webhook_secret_id" {
  description = "ID of the Secret Manager secret Terraform creates for the one Slack incoming-webhook URL when slack_destinations is empty; null means \"<name_prefix>-slack-webhook\". Must be null with slack_destinations."
  type        = string
  default     = null

  validation {
    condition     = var.slack_webhook_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.slack_webhook_secret_id))
    error_message = "slack_webhook_secret_id must be a secret ID of 1-255 letters, digits, '_' or '-' (just the ID, not projects/.../secrets/...), e.g. \"llm-budget-slack-webhook\", or null for the default."
  }

  validation {
    condition     = var.slack_webhook_secret_id == null || length(var.slack_destinations) == 0
    error_message = "slack_webhook_secret_id must be null when slack_destinations is set: each destination gets its own secret <name_prefix>-slack-<name>-webhook; remove slack_webhook_secret_id."
  }
}

variable "state_object" {
  description = "Object name of the alert state in the state bucket (STATE_OBJECT)."
  type        = string
  default     = "llm-budget-alert/state.json"

  validation {
    condition     = length(var.state_object) <= 1024 && can(regex("^[^/\\s]([^\\s]*[^/\\s])?$", var.state_object))
    error_message = "state_object must be an object name without spaces that neither starts nor ends with '/', e.g. \"llm-budget-alert/state.json\"."
  }
}

variable "state_version_retention_days" {
  description = "Days a replaced version of the alert state is kept (the bucket is versioned, so a bad write can be rolled back)."
  type        = number
  default     = 14

  validation {
    condition     = var.state_version_retention_days >= 1 && var.state_version_retention_days <= 365 && floor(var.state_version_retention_days) == var.state_version_retention_days
    error_message = "state_version_retention_days must be a whole number of days from 1 to 365, e.g. 14."
  }
}

variable "state_versions_kept" {
  description = "Replaced versions of the alert state kept at most (older ones are deleted even before state_version_retention_days)."
  type        = number
  default     = 48

  validation {
    condition     = var.state_versions_kept >= 1 && var.state_versions_kept <= 1000 && floor(var.state_versions_kept) == var.state_versions_kept
    error_message = "state_versions_kept must be a whole number from 1 to 1000, e.g. 48 (two days of hourly runs)."
  }
}

variable "time_zone" {
  description = "IANA time zone the schedule is interpreted in. The digest hour (budgets.digest.hour_utc) is always UTC."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})$", var.time_zone))
    error_message = "time_zone must be an IANA time zone name such as Etc/UTC, Europe/Berlin or America/Los_Angeles."
  }
}

variable "xai_management_base_url" {
  description = "Base URL of the xAI Management API (billing). Change it only to route through a proxy."
  type        = string
  default     = "https://management-api.x.ai"

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$", var.xai_management_base_url))
    error_message = "xai_management_base_url must be an https:// URL without a trailing slash, e.g. https://management-api.x.ai (the default)."
  }
}
