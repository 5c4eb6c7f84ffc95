# The one-off migrate task: `locowatch cloud migrate` as the database owner (schema, then
# policies from the retention settings), then the login users of ingest and the dashboard
# with the passwords from Secrets Manager. It is idempotent, so it runs on every apply that
# changes it (a new image means new migrations) and before ingest starts: `cloud run`
# refuses a schema that is behind the code.

data "aws_region" "current" {}

locals {
  prefix = "migrate"
  cloud_yaml = yamlencode({
    version    = 1
    listen     = "127.0.0.1:50051" # migrate reads only facilities and retention from it
    facilities = [for id in keys(var.platform.facility_etags) : "facilities/${id}.yaml"]
    retention  = var.retention
  })
}

resource "aws_s3_object" "cloud_yaml" {
  bucket       = var.platform.config_bucket
  key          = "${local.prefix}/cloud.yaml"
  content      = local.cloud_yaml
  content_type = "application/yaml"
}

# Roles, log group and the task definition (config-sync, then migrate): modules/ecs-task.
module "task" {
  source              = "../ecs-task"
  name                = var.name
  app                 = "migrate"
  platform            = var.platform
  secret_arns         = values(var.database_secret_arns)
  secrets_policy_name = "read-database-secrets"
  cpu                 = 512
  memory              = 1024
  log_retention_days  = var.log_retention_days
  tasks = {
    migrate = {
      family            = "${var.name}-migrate"
      config_prefix     = local.prefix
      facilities        = keys(var.platform.facility_etags)
      log_stream_prefix = "migrate"
      container = {
        name       = "migrate"
        image      = var.image
        entryPoint = ["/bin/sh", "-ec"]
        command = [join(" ", [
          "locowatch cloud migrate --config /etc/locowatch/cloud.yaml",
          "&& locowatch cloud user \"$WRITER_USER\" --role writer --password-env WRITER_PASSWORD",
          "&& locowatch cloud user \"$READER_USER\" --role reader --password-env READER_PASSWORD",
        ])]
        environment = [
          { name = "WRITER_USER", value = var.database_users.writer },
          { name = "READER_USER", value = var.database_users.reader },
          { name = "LOCOWATCH_LOG_FORMAT", value = "json" },
        ]
        secrets = [
          { name = "LOCOWATCH_DB", valueFrom = "${var.database_secret_arns.owner}:url::" },
          { name = "WRITER_PASSWORD", valueFrom = "${var.database_secret_arns.writer}:password::" },
          { name = "READER_PASSWORD", valueFrom = "${var.database_secret_arns.reader}:password::" },
        ]
      }
    }
  }
}

resource "aws_security_group" "migrate" {
  name_prefix = "${var.name}-migrate-"
  description = "Migrate task: no inbound; HTTPS out for S3, Secrets Manager, logs and the image"
  vpc_id      = var.platform.vpc_id
  #checkov:skip=CKV2_AWS_5:A one-off task has no service to attach it to: run-migrate.sh passes it to `aws ecs run-task`.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "migrate_https" {
  security_group_id = aws_security_group.migrate.id
  description       = "HTTPS: S3, Secrets Manager, CloudWatch Logs, image registry"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# Runs the task and waits for its exit code during apply; ingest depends on it.
resource "terraform_data" "run" {
  count            = var.run_on_apply ? 1 : 0
  triggers_replace = [module.task.task_definition_arns.migrate, aws_s3_object.cloud_yaml.etag]
  provisioner "local-exec" {
    command = "${path.module}/run-migrate.sh"
    environment = {
      AWS_REGION      = data.aws_region.current.name
      CLUSTER         = var.platform.cluster_name
      TASK_DEFINITION = module.task.task_definition_arns.migrate
      SUBNETS         = join(",", var.platform.private_subnet_ids)
      SECURITY_GROUPS = join(",", [aws_security_group.migrate.id, var.platform.database_client_security_group_id])
      LOG_GROUP       = module.task.log_group_name
    }
  }
}
