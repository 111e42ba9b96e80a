# `doctor` in the cloud. The function's ingress is internal-only, so an operator's curl to its URL is
# refused; this paused job is how an operator reaches `POST {"doctor": true}` from inside the project:
# `gcloud scheduler jobs run <name>` (output `doctor_command`) runs it once, and the "doctor" log line
# carries the readiness table. It never runs on its own (paused), posts one Slack test message per
# manual run ("post_test"), and is not retried (a not-ready answer is 503, which is the verdict, not a
# transient error).
resource "google_cloud_scheduler_job" "doctor" {
  project          = var.project_id
  region           = local.scheduler_region
  name             = local.doctor_job_name
  description      = "Manual only (paused): runs ${local.function_name} doctor, read-only readiness checks and one Slack test post."
  schedule         = "0 0 1 1 *"
  time_zone        = "Etc/UTC"
  paused           = true
  attempt_deadline = local.scheduler_deadline

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ doctor = true, post_test = true }))

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.fn.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}
