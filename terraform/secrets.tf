# Secret Manager secret CONTAINERS only: one per keyed provider account (locals.keyed_accounts)
# and one per Slack destination (locals.slack_secrets: the one webhook secret without
# slack_destinations, else one per destination). Their values are added out of band with
# `gcloud secrets versions add` (output secret_add_commands), so no key ever enters the Terraform
# state or plan.
#
# The function reads each secret at run time (google-cloud-secret-manager, version "latest"),
# so a rotated key is used from the next run on, without a redeploy. That is also why there is no
# secret_environment_variables block in function.tf.
#
# The runtime service account may access exactly these secrets: secretAccessor is granted on each
# secret, never on the project.

resource "google_secret_manager_secret" "provider_key" {
  for_each = local.keyed_accounts

  project   = var.project_id
  secret_id = each.value.secret_id
  labels = {
    provider = each.value.provider
    account  = each.value.label
  }

  replication {
    auto {}
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "provider_key_runtime" {
  for_each = google_secret_manager_secret.provider_key

  project   = each.value.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_secret_manager_secret" "slack_webhook" {
  for_each = local.slack_secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  labels = {
    purpose     = "slack-webhook"
    destination = each.key
  }
  # What the destination is for (slack_destinations.*.description): annotations take free text,
  # labels do not.
  annotations = each.value.description == null ? {} : { description = each.value.description }

  replication {
    auto {}
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "slack_webhook_runtime" {
  for_each = google_secret_manager_secret.slack_webhook

  project   = each.value.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# A deployment from before slack_destinations had one unkeyed secret and grant; they are the
# "default" destination's now, kept in place instead of destroyed and re-created (an explicit move
# from a resource to one of its for_each instances, as Terraform's refactoring docs describe:
# developer.hashicorp.com/terraform/language/modules/develop/refactoring, "Enabling count or
# for_each For a Resource").
moved {
  from = google_secret_manager_secret.slack_webhook
  to   = google_secret_manager_secret.slack_webhook["default"]
}

moved {
  from = google_secret_manager_secret_iam_member.slack_webhook_runtime
  to   = google_secret_manager_secret_iam_member.slack_webhook_runtime["default"]
}
