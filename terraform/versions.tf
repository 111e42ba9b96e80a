terraform {
  # 1.9: variable validations may refer to other variables (hashicorp/terraform#34955, v1.9.0
  # changelog); budgets' checks of notify and default_destination read slack_destinations.
  required_version = ">= 1.9.0"

  required_providers {
    archive = {
      # ~> 2.7: `excludes` accepts glob patterns (used for the caches in locals.tf).
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    google = {
      # 7.x: service_config.service is output-only; google_project_service has no
      # disable_on_destroy default (apis.tf sets it).
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    time = {
      # Only for the IAM propagation pause before the first build (function.tf).
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Labels every resource that supports labels, on top of var.labels.
  default_labels = merge({ app = "llm-budget-alert" }, var.labels)
}
