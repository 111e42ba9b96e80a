# Three identities, each with only what its job needs:
#
#   runtime  - the function runs as it: reads its secrets, the alert state and the billing export
#   invoker  - Cloud Scheduler signs its OIDC token with it: may only invoke the function
#   build    - Cloud Build runs the function's build as it: reads the source, writes the image, logs
#
# Grants that belong to one resource live next to it: secret access in secrets.tf, the state
# bucket in storage.tf, the invoker in scheduler.tf. This file holds the accounts and the grants
# that have no narrower scope than the project or the billing export dataset.

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-runtime"
  display_name = "LLM budget alert: function runtime"
  description  = "Runs ${local.function_name}: reads its Secret Manager secrets, the alert state object and the billing export."

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-invoker"
  display_name = "LLM budget alert: scheduler invoker"
  description  = "Identity in Cloud Scheduler's OIDC token; holds roles/run.invoker on ${local.function_name} only."

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "LLM budget alert: function build"
  description  = "Cloud Build identity for ${local.function_name}: reads the source, pushes the image, writes build logs."

  depends_on = [time_sleep.api_propagation]
}

# --- runtime: BigQuery (Gemini / Vertex AI spend) -------------------------------------------

# Run query jobs in this project (BIGQUERY_JOB_PROJECT). Jobs are a project-level resource, so
# this role has no narrower scope; it grants no data access by itself. Only when gemini is set.
resource "google_project_iam_member" "runtime_bigquery_job_user" {
  count = length(local.export_datasets) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

# Read the billing export, on its dataset only. The dataset may live in another project (often a
# central billing project); the identity running Terraform then needs bigquery.datasets.setIamPolicy
# there (e.g. roles/bigquery.dataOwner on the dataset).
resource "google_bigquery_dataset_iam_member" "runtime_export_reader" {
  for_each = local.export_datasets

  project    = each.value.project
  dataset_id = each.value.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.runtime.email}"
}

# --- build: what a Cloud Run functions build needs, as narrowly as each grant allows ---------
#
# Google documents, for a user-specified build service account of a function: Logs Writer
# (roles/logging.logWriter, "for storing build logs in Cloud Logging"), Artifact Registry Writer
# (roles/artifactregistry.writer, "for storing build images in Artifact Registry") and Storage
# Object Admin (roles/storage.objectAdmin, "for retrieving the function source from the Cloud
# Storage bucket, and to store build images in Artifact Registry")
# (https://cloud.google.com/run/docs/configuring/services/build-service-account, "Required roles";
# likewise https://cloud.google.com/functions/docs/securing/build-custom-sa). Each role is granted
# below, on the narrowest resource that holds what the build touches, never project-wide unscoped.

# Write build logs. Cloud Logging has no per-build scope for this role; it only allows writing
# log entries (no reading).
resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Push the built image and its build cache: on this function's repository only (function.tf).
resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = google_artifact_registry_repository.functions.project
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

# Read the uploaded source archive: on the source bucket only. Nothing is written back there.
resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# The documented Storage Object Admin, where the build uses it: Cloud Functions copies the archive
# to Google's gcf-v2-sources-<project number>-<region> bucket and builds from there. That bucket
# only appears with the first deployment, so it cannot be named in a bucket-level grant; a
# project-level grant with an IAM condition limits the role to those buckets. The state bucket and
# everything else in the project stay out of reach of the build (which runs third-party setup code).
resource "google_project_iam_member" "build_gcf_sources_admin" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "gcf-v2-sources buckets only"
    description = "Cloud Functions' own copies of function sources in this project."
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}

# Let the grants above reach every Google front end before Cloud Functions starts the first build
# as the build service account; without the pause the first apply can fail with "Access to
# bucket ... denied" and succeed only when re-run.
resource "time_sleep" "build_iam_propagation" {
  create_duration = "60s"

  triggers = {
    build_service_account = google_service_account.build.email
  }

  depends_on = [
    google_project_iam_member.build_log_writer,
    google_artifact_registry_repository_iam_member.build_writer,
    google_storage_bucket_iam_member.build_source_reader,
    google_project_iam_member.build_gcf_sources_admin,
  ]
}
