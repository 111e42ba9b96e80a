# A separate root for the AWS side of Bedrock's federation: apply it in the AWS account whose Bedrock
# spend the function reads (or the payer account, for a whole organisation's view).
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { app = "llm-budget-alert" })
  }
}
