# The dead-man's switch: Google's own monitoring says so when the alerter itself stops.
#
# Every failure the check meets is reported through Slack, which says nothing when the function
# never runs (a broken deploy, a configuration error, a paused Scheduler job) or when Slack itself
# is gone (a revoked webhook). So Cloud Logging counts the "check finished" line each completed
# check writes (local.checks_completed_filter), by its `outcome` field, and Cloud Monitoring alerts
# the addresses in alert_emails (and alert_notification_channels) when, for deadman_window_hours:
#
#   not_running  no check completed at all (nothing ran, or every run died before the end)
#   failing      no check completed with outcome "ok" (every run had a failed source, Slack
#                refused the message, or the alert state was unusable)
#
# A stopped alerter meets both conditions; the two incidents name the two cases. Metric-absence
# conditions need one data point after the policy is created or changed before they can fire
# (cloud.google.com/monitoring/alerts/metric-absence): a deployment whose very first run never
# completes is caught by the apply's own smoke test (README), not by these policies.

resource "google_logging_metric" "checks_completed" {
  project     = var.project_id
  name        = "${var.name_prefix}-checks-completed"
  description = "Checks of ${local.function_name} that ran to the end, by outcome (ok, partial, notify_failed, dry_run)."
  filter      = local.checks_completed_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "LLM budget alert: completed checks"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "ok: every source answered and Slack took the message (or there was nothing to say); partial, notify_failed, dry_run otherwise."
    }
  }

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  project      = var.project_id
  display_name = "LLM budget alert dead-man's switch: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [time_sleep.api_propagation]
}

locals {
  alert_channels = concat(
    [for c in google_monitoring_notification_channel.email : c.name],
    var.alert_notification_channels,
  )
  checks_completed_metric = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.checks_completed.name}\" AND resource.type=\"cloud_run_revision\""
}

# An alert policy without a channel still opens incidents in the console, but tells nobody.
check "dead_mans_switch_has_recipients" {
  assert {
    condition     = length(var.alert_emails) + length(var.alert_notification_channels) > 0
    error_message = "Nobody will hear the dead-man's switch: set alert_emails = [\"you@example.com\"] (or alert_notification_channels) in terraform.tfvars."
  }
}

resource "google_monitoring_alert_policy" "not_running" {
  project               = var.project_id
  display_name          = "LLM budget alert: no check completed for ${var.deadman_window_hours} h"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.alert_channels

  conditions {
    display_name = "No completed check of ${local.function_name} for ${var.deadman_window_hours} h"

    condition_absent {
      filter   = local.checks_completed_metric
      duration = local.deadman_window

      # One series for the whole function: a new revision (every deploy) starts new series, and
      # an absence per series would fire for the retired revision.
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "LLM budget alert has not completed a check for ${var.deadman_window_hours} h"
    content   = <<-EOT
      No run of `${local.function_name}` (project `${var.project_id}`) has written "check finished"
      for ${var.deadman_window_hours} hours, so budget alerts are not being sent. Look at, in order:

      1. The Scheduler job: `gcloud scheduler jobs describe ${local.scheduler_job_name} --location=${local.scheduler_region} --project=${var.project_id}` (state ENABLED? last attempt status?).
      2. The function's errors: `gcloud functions logs read ${local.function_name} --gen2 --region=${var.region} --project=${var.project_id} --min-log-level=ERROR --limit=50`.
      3. A run now: `gcloud scheduler jobs run ${local.scheduler_job_name} --location=${local.scheduler_region} --project=${var.project_id}`.

      The incident closes by itself after the next completed check.
    EOT
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "failing" {
  project               = var.project_id
  display_name          = "LLM budget alert: no clean check for ${var.deadman_window_hours} h"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "No check of ${local.function_name} with outcome ok for ${var.deadman_window_hours} h"

    condition_absent {
      filter   = "${local.checks_completed_metric} AND metric.label.outcome=\"ok\""
      duration = local.deadman_window

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "LLM budget alert checks keep failing (${var.deadman_window_hours} h)"
    content   = <<-EOT
      Runs of `${local.function_name}` (project `${var.project_id}`) complete, but none has been clean
      for ${var.deadman_window_hours} hours: a provider keeps failing (outcome `partial`) or Slack
      refuses the message (outcome `notify_failed`), so alerts may be missing or stale. The reason is
      in the ERROR lines: `gcloud functions logs read ${local.function_name} --gen2 --region=${var.region} --project=${var.project_id} --min-log-level=ERROR --limit=50`.
      A revoked Slack webhook needs a new secret version (`terraform output secret_add_commands`);
      a provider key, likewise.
    EOT
  }

  alert_strategy {
    auto_close = "86400s"
  }
}
