# Everything secret the cloud side has: one customer-managed KMS key, the gateway tokens and
# the passwords of the database roles. Tokens and passwords are made here by terraform
# (random_password), so they also sit in terraform state: keep the state in an encrypted,
# access-controlled backend (see terraform/README.md).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# One key for the deployment: Secrets Manager, CloudWatch Logs, S3, EBS and backups. The
# account's administrators manage it through IAM; CloudWatch Logs needs its own grant
# because log groups are encrypted by the service, not by a caller's IAM identity.
resource "aws_kms_key" "main" {
  description             = "${var.name}: secrets, logs, config bucket, database volume"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  # A key policy, not an IAM policy: "Resource: *" in it means this key.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersThroughIam"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisDeploymentsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*${var.name}*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# Gateway tokens: the value goes to the gateway's token_file, the SHA-256 into cloud.yaml.
resource "random_password" "gateway_token" {
  for_each = var.gateways
  length   = 43 # as many characters as `locowatch cloud token` (32 random bytes, base64url)
  special  = false
  keepers = {
    generation = lookup(var.token_generation, each.key, 0)
  }
}

resource "aws_secretsmanager_secret" "gateway_token" {
  for_each    = var.gateways
  name        = "${var.name}/gateways/${each.key}/token"
  description = "Token of gateway ${each.key} (facility ${each.value}); install it as the gateway's token_file."
  kms_key_id  = aws_kms_key.main.arn
  #checkov:skip=CKV2_AWS_57:Rotation is `token_generation` + apply: a Lambda rotating the value alone would not update the hash ingest checks, and the gateway would be locked out.
}

resource "aws_secretsmanager_secret_version" "gateway_token" {
  for_each      = var.gateways
  secret_id     = aws_secretsmanager_secret.gateway_token[each.key].id
  secret_string = random_password.gateway_token[each.key].result
}

# Database role passwords. The owner runs migrations; ingest logs in as a member of
# locowatch_writer, the dashboard and reports as members of locowatch_reader
# (docs/cloud.md). The database module stores each with its connection URL.
resource "random_password" "database" {
  for_each = toset(["owner", "writer", "reader"])
  length   = 32
  special  = false # goes into postgresql:// URLs unescaped
}
