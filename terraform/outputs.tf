output "build_service_account" {
  description = "Email of the service account Cloud Build runs the function's builds as."
  value       = google_service_account.build.email
}

output "function_name" {
  description = "Name of the Cloud Run function (gen2)."
  value       = google_cloudfunctions2_function.fn.name
}

output "function_uri" {
  description = "HTTPS URI of the function. It requires an OIDC token of a principal with roles/run.invoker (only the invoker service account has it)."
  value       = google_cloudfunctions2_function.fn.service_config[0].uri
}

output "invoker_service_account" {
  description = "Email of the service account Cloud Scheduler signs its OIDC token with."
  value       = google_service_account.invoker.email
}

output "logs_command" {
  description = "Command that prints the function's recent log entries."
  value       = "gcloud functions logs read ${google_cloudfunctions2_function.fn.name} --gen2 --region=${var.region} --project=${var.project_id} --limit=50"
}

output "runtime_service_account" {
  description = "Email of the service account the function runs as."
  value       = google_service_account.runtime.email
}

output "runtime_service_account_unique_id" {
  description = "Numeric unique id of the runtime service account: google_subject of terraform/aws/ (the sub of its Google ID tokens)."
  value       = google_service_account.runtime.unique_id
}

output "scheduler_job_name" {
  description = "Name of the hourly Cloud Scheduler job (it also sends the daily digest)."
  value       = google_cloud_scheduler_job.hourly.name
}

output "secret_add_commands" {
  description = "One command per secret that adds its value (paste the key or webhook URL, then press Enter and Ctrl-D), by \"provider/label\" and \"slack\" (with slack_destinations: \"slack/<destination>\"). Run each once before the first check, and again to rotate."
  value = merge(
    {
      for k, s in google_secret_manager_secret.provider_key :
      k => "gcloud secrets versions add ${s.secret_id} --project=${var.project_id} --data-file=-"
    },
    {
      for name, s in google_secret_manager_secret.slack_webhook :
      (length(var.slack_destinations) > 0 ? "slack/${name}" : "slack") => "gcloud secrets versions add ${s.secret_id} --project=${var.project_id} --data-file=-"
    },
  )
}

output "secret_ids" {
  description = "Secret Manager secret IDs to fill, by \"provider/label\" (and \"slack\" for the webhook URL, or \"slack/<destination>\" for each of slack_destinations)."
  value = merge(
    { for k, s in google_secret_manager_secret.provider_key : k => s.secret_id },
    {
      for name, s in google_secret_manager_secret.slack_webhook :
      (length(var.slack_destinations) > 0 ? "slack/${name}" : "slack") => s.secret_id
    },
  )
}

output "source_bucket" {
  description = "Bucket holding the function's source archives."
  value       = google_storage_bucket.source.name
}

output "state_bucket" {
  description = "Bucket holding the alert state object (STATE_BUCKET)."
  value       = google_storage_bucket.state.name
}

output "trigger_command" {
  description = "Command that runs the check now instead of waiting for the next scheduled minute."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.hourly.name} --location=${local.scheduler_region} --project=${var.project_id}"
}

output "doctor_command" {
  description = "Commands that run `doctor` in the deployed function once (the paused doctor job) and print its readiness table from the logs."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.doctor.name} --location=${local.scheduler_region} --project=${var.project_id} && sleep 60 && gcloud logging read 'resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloudfunctions2_function.fn.name}\" AND jsonPayload.message=\"doctor\"' --project=${var.project_id} --freshness=10m --limit=1 --format=json"
}
