# Two private buckets in var.region: the alert state (what was already said to Slack) and the
# function's source archives. Both: uniform bucket-level access (IAM only, no object ACLs) and
# public access prevention enforced, so no grant can ever make an object public.

resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:Usage logs would need a third bucket; the bucket holds one small JSON object written only by the runtime service account, and Cloud Audit Logs (Data Access) can be enabled for storage if an access trail is required.
  project                     = var.project_id
  name                        = local.state_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Every hourly write makes a new generation; the previous ones stay restorable for a while.
  versioning {
    enabled = true
  }

  # Replaced state versions go after var.state_version_retention_days days...
  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = var.state_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # ...or as soon as var.state_versions_kept newer versions exist, whichever comes first.
  lifecycle_rule {
    condition {
      with_state         = "ARCHIVED"
      num_newer_versions = var.state_versions_kept
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.api_propagation]
}

# The function reads the state object, then replaces it with if_generation_match (a conditional
# write, so two overlapping runs cannot both commit). Replacing an object needs
# storage.objects.create + storage.objects.delete besides get: roles/storage.objectUser has
# exactly the object read/write/delete permissions and, unlike roles/storage.objectAdmin, cannot
# change IAM. Granted on this bucket only.
resource "google_storage_bucket_iam_member" "state_runtime" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Usage logs would need a third bucket; only Terraform writes here and only the build service account reads, both recorded by Cloud Audit Logs when Data Access logging is enabled.
  project                     = var.project_id
  name                        = local.source_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Archives are named by their content hash, so a code change uploads a new object and Terraform
  # deletes the old one; versioning keeps that old one restorable for a week.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.api_propagation]
}
