variable "google_audience" {
  description = "The audience the function asks Google's ID token for (a bedrock account's audience; default sts.amazonaws.com). Checked as accounts.google.com:oaud."
  type        = string
  default     = "sts.amazonaws.com"

  validation {
    condition     = length(trimspace(var.google_audience)) > 0 && length(var.google_audience) <= 200
    error_message = "google_audience must be the non-empty audience string of the budget document's bedrock account (default sts.amazonaws.com)."
  }
}

variable "google_subject" {
  description = "Numeric unique id of the function's runtime service account (output runtime_service_account_unique_id of the Google root). Checked as accounts.google.com:sub and :aud (the azp claim)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{10,30}$", var.google_subject))
    error_message = "google_subject must be the service account's numeric unique id, e.g. 100018646976219416293 (terraform output runtime_service_account_unique_id), not its email."
  }
}

variable "region" {
  description = "AWS region for the provider (IAM is global; Cost Explorer answers in us-east-1 whatever this is)."
  type        = string
  default     = "us-east-1"
}

variable "role_name" {
  description = "Name of the IAM role the function assumes; its ARN goes into the bedrock account's role_arn."
  type        = string
  default     = "llm-budget-alert-ce-read"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be 1-64 characters of letters, digits and +=,.@_- (an IAM role name)."
  }
}

variable "tags" {
  description = "Extra tags on the role (plus app = \"llm-budget-alert\")."
  type        = map(string)
  default     = {}
}
