# The function: source archive -> source bucket -> Cloud Build (as the build service account,
# image into this repository) -> Cloud Run functions gen2 service running as the runtime
# service account.

# main.py, the top-level modules, the packages and requirements.txt; nothing else (locals.tf
# lists what is excluded). Fixed file modes and zeroed timestamps make the hash depend on content
# only, on any machine.
data "archive_file" "source" {
  type             = "zip"
  source_dir       = local.source_root
  excludes         = local.source_excludes
  output_path      = "${path.module}/.build/function-source.zip"
  output_file_mode = "0644"
}

# Named by the archive's content hash: a code change is a new object name, hence a change of
# build_config.source, hence a rebuild and redeploy. An unchanged tree changes nothing.
resource "google_storage_bucket_object" "source" {
  bucket       = google_storage_bucket.source.name
  name         = "function-source-${data.archive_file.source.output_sha256}.zip"
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

# Images of this function only, so the build service account can be given write access to this
# repository alone, and old images are cleaned up (storage above 0.5 GB is billed).
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption is used throughout this deployment; the images contain only the open function code and its public dependencies (no secrets), and a Cloud KMS key would add cost and key management for no gain.
  project                = var.project_id
  location               = var.region
  repository_id          = local.repository_id
  description            = "Build images of the ${local.function_name} Cloud Run function."
  format                 = "DOCKER"
  cleanup_policy_dry_run = false

  # KEEP wins over DELETE: the three newest versions of each image (the running one among them)
  # always stay; anything else older than 30 days is deleted.
  cleanup_policies {
    id     = "keep-newest-3"
    action = "KEEP"
    most_recent_versions {
      keep_count = 3
    }
  }

  cleanup_policies {
    id     = "delete-older-than-30d"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [time_sleep.api_propagation]
}

# The function's environment: exactly config.CLOUD_ENV_VARS (tests/test_terraform.py holds the two
# lists equal), SLACK_WEBHOOK_SECRET coming from local.slack_webhook_env only when no
# slack_destinations are set (with them, each destination's webhook_secret is in BUDGET_CONFIG).
locals {
  function_env = {
    ANTHROPIC_BASE_URL         = var.anthropic_base_url
    AWS_COST_EXPLORER_BASE_URL = var.aws_cost_explorer_base_url
    BIGQUERY_JOB_PROJECT       = var.project_id
    BUDGET_CONFIG              = jsonencode(local.budget_document)
    CHECK_DEADLINE_SECONDS     = tostring(local.check_deadline_seconds)
    LOG_LEVEL                  = var.log_level
    OPENAI_BASE_URL            = var.openai_base_url
    OPENROUTER_BASE_URL        = var.openrouter_base_url
    STATE_BACKEND              = "gcs"
    STATE_BUCKET               = google_storage_bucket.state.name
    STATE_OBJECT               = var.state_object
    XAI_MANAGEMENT_BASE_URL    = var.xai_management_base_url
  }
}

resource "google_cloudfunctions2_function" "fn" {
  project     = var.project_id
  location    = var.region
  name        = local.function_name
  description = "Hourly check of month-to-date LLM spend (OpenAI, Anthropic, xAI, Gemini/Vertex AI) against budgets; alerts Slack."

  build_config {
    runtime           = var.runtime
    entry_point       = "budget_check"
    service_account   = google_service_account.build.id # projects/P/serviceAccounts/EMAIL
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }

    # Rebuild on the runtime's security updates without a redeploy from here.
    automatic_update_policy {}
  }

  service_config {
    available_memory                 = "256M" # benchmarks: < 150 MB peak RSS
    timeout_seconds                  = local.function_timeout_seconds
    min_instance_count               = 0 # scale to zero between the hourly runs
    max_instance_count               = 2 # one run at a time, plus a manual trigger or retry overlapping it
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_INTERNAL_ONLY" # see below
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime.email

    # Internal-only ingress admits the hourly job: Cloud Run's ingress documentation lists, under
    # "Internal", requests from "the following Google Cloud products, if they are in the same project
    # or VPC Service Controls perimeter as your Cloud Run service: Cloud Scheduler, Cloud Tasks,
    # Eventarc, Pub/Sub, Workflows, BigQuery", which "stay within the Google network, even if they
    # access your service at the run.app URL" (https://cloud.google.com/run/docs/securing/ingress).
    # The job lives in this project (scheduler.tf), in any region. Everything else, the internet
    # included, is refused before IAM is even consulted; IAM (roles/run.invoker, invoker SA only)
    # still applies on top. Run a check by hand with `terraform output trigger_command`.

    environment_variables = merge(local.function_env, local.slack_webhook_env)
  }

  # The runtime service account must be able to read every secret, the state and the billing
  # export before the first scheduled run; the build service account's grants must have propagated
  # before the first build.
  depends_on = [
    google_bigquery_dataset_iam_member.runtime_export_reader,
    google_project_iam_member.runtime_bigquery_job_user,
    google_secret_manager_secret_iam_member.provider_key_runtime,
    google_secret_manager_secret_iam_member.slack_webhook_runtime,
    google_storage_bucket_iam_member.state_runtime,
    time_sleep.build_iam_propagation,
  ]
}
