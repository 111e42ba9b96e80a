# The role the function's Google service account assumes with sts:AssumeRoleWithWebIdentity, and the one
# permission it needs. No access key exists anywhere.
#
# Trust: Google is AWS's built-in OIDC provider "accounts.google.com" (no IAM OIDC provider resource is
# needed). For a Google ID token with an azp claim, as service-account tokens have, AWS maps the condition
# key accounts.google.com:aud to azp and accounts.google.com:oaud to aud ("Available keys for AWS web
# identity federation", IAM User Guide, reference_policies_iam-condition-keys). Both azp and sub are the
# service account's numeric unique id, so the three conditions pin this one service account and the
# audience the function asks for; any other Google identity is refused (AccessDenied, a "permission"
# failure in the check).

data "aws_iam_policy_document" "trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = ["accounts.google.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:sub"
      values   = [var.google_subject]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:aud"
      values   = [var.google_subject]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:oaud"
      values   = [var.google_audience]
    }
  }
}

# Read-only: GetCostAndUsage is the only call the function makes. Cost Explorer supports no
# resource-level permissions, so the resource is "*" (Service Authorization Reference, Cost Explorer).
data "aws_iam_policy_document" "cost_explorer_read" {
  statement {
    sid       = "ReadCostAndUsage"
    effect    = "Allow"
    actions   = ["ce:GetCostAndUsage"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "ce_read" {
  name                 = var.role_name
  description          = "llm-budget-alert: read Bedrock spend from Cost Explorer, assumed by one Google service account"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600 # the function asks for 900 s, STS's minimum
}

resource "aws_iam_role_policy" "cost_explorer_read" {
  name   = "cost-explorer-read"
  role   = aws_iam_role.ce_read.id
  policy = data.aws_iam_policy_document.cost_explorer_read.json
}
