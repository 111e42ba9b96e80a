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
    "logging.googleapis.com",              # function and build logs; the completed-checks metric (monitoring.tf)
    "monitoring.googleapis.com",           # the dead-man's switch alert policies and their email channels
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

# A newly enabled API is not usable at once: creating a resource right after enabling its API can
# fail with "API has not been used in project ... or it is disabled" (403 SERVICE_DISABLED) and
# succeed only when `terraform apply` is re-run. The google provider's own acceptance tests wait 60 s
# after google_project_service for exactly this error (GoogleCloudPlatform/magic-modules #10076,
# "Add wait in TestAccAppEngineStandardAppVersion_update test to avoid 'API has not been used in
# project' error": a time_sleep of 60s). Everything that needs one of these APIs depends on this
# pause, not on google_project_service directly. It is created once: re-applying an unchanged
# list does not wait again; adding an API to the list does.
resource "time_sleep" "api_propagation" {
  create_duration = "60s"

  triggers = {
    services = join(",", sort(local.services))
  }

  depends_on = [google_project_service.enabled]
}
