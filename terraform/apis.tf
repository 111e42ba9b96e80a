# APIs the deployment uses. Enabling an already-enabled API is a no-op.
#
# disable_on_destroy = false, deliberately: provider 7.0 removed its default, and disabling
# APIs on `terraform destroy` would break anything else in the project that uses them (and can
# take minutes to propagate). Destroy leaves them enabled; an enabled API with no resources costs
# nothing.

locals {
  services = [
    "artifactregistry.googleapis.com",     # build images of the function (function.tf repository)
    "bigquery.googleapis.com",             # Gemini/Vertex spend from the Cloud Billing export
    "cloudbuild.googleapis.com",           # Cloud Run functions builds the source into an image
    "cloudfunctions.googleapis.com",       # the function itself
    "cloudresourcemanager.googleapis.com", # project-level IAM bindings (iam.tf)
    "cloudscheduler.googleapis.com",       # the hourly trigger
    "iam.googleapis.com",                  # service accounts
    "logging.googleapis.com",              # function and build logs
    "run.googleapis.com",                  # gen2 functions run as Cloud Run services
    "secretmanager.googleapis.com",        # provider admin keys and the Slack webhook URL
    "storage.googleapis.com",              # alert state and source archive buckets
  ]
}

resource "google_project_service" "enabled" {
  for_each = toset(local.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}
