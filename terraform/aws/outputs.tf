output "role_arn" {
  description = "ARN of the role: the bedrock account's role_arn in the budget document."
  value       = aws_iam_role.ce_read.arn
}
