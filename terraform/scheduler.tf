# The hourly trigger. The same run sends the daily digest when the UTC hour equals
# budgets.digest.hour_utc, so this is the only job (one of the three free jobs per billing account).

resource "google_cloud_scheduler_job" "hourly" {
  project          = var.project_id
  region           = local.scheduler_region
  name             = local.scheduler_job_name
  description      = "Runs ${local.function_name}: month-to-date LLM spend vs budgets, Slack alerts, daily digest."
  schedule         = var.schedule
  time_zone        = var.time_zone
  attempt_deadline = local.scheduler_deadline # longer than the function timeout, so Scheduler never cuts a run short

  # One retry after a failed or timed-out attempt; the alert state de-duplicates what a retried
  # run would post again.
  retry_config {
    retry_count          = 1
    min_backoff_duration = "60s"
    max_backoff_duration = "300s"
    max_doublings        = 1
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn.service_config[0].uri

    # Cloud Run checks this Google-signed token and the invoker's roles/run.invoker below.
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.fn.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}

# Gen2 functions are invoked through their Cloud Run service: roles/run.invoker on that service,
# to the invoker service account and nobody else.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = google_cloudfunctions2_function.fn.project
  location = google_cloudfunctions2_function.fn.location
  name     = google_cloudfunctions2_function.fn.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}
