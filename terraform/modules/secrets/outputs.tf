output "kms_key_arn" {
  description = "ARN of the deployment's customer-managed KMS key."
  value       = aws_kms_key.main.arn
}

output "gateway_token_secret_arns" {
  description = "Gateway id -> ARN of the Secrets Manager secret holding its token."
  value       = { for id, secret in aws_secretsmanager_secret.gateway_token : id => secret.arn }
}

output "gateway_token_sha256" {
  description = "Gateway id -> SHA-256 hex of its token, what cloud.yaml lists (a hash is not a secret)."
  value       = { for id, token in random_password.gateway_token : id => nonsensitive(sha256(token.result)) }
}

output "database_passwords" {
  description = "Passwords of the database roles: owner, writer, reader."
  value       = { for role, password in random_password.database : role => password.result }
  sensitive   = true
}
