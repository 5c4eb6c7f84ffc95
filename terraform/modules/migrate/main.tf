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
    facilities = [for id in keys(var.facility_etags) : "facilities/${id}.yaml"]
    retention  = var.retention
  })
  log_options = {
    awslogs-group         = aws_cloudwatch_log_group.migrate.name
    awslogs-region        = data.aws_region.current.name
    awslogs-stream-prefix = "migrate"
  }
}

resource "aws_s3_object" "cloud_yaml" {
  bucket       = var.config_bucket
  key          = "${local.prefix}/cloud.yaml"
  content      = local.cloud_yaml
  content_type = "application/yaml"
}

resource "aws_cloudwatch_log_group" "migrate" {
  name              = "/${var.name}/migrate"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  volume { name = "config" }
  volume { name = "tmp" }

  container_definitions = jsonencode([
    {
      name                   = "config-sync"
      image                  = var.config_sync.image
      essential              = false
      user                   = "0" # writes the volume, then hands it to the app's uid
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [var.config_sync.script]
      environment = [
        { name = "CONFIG_BUCKET", value = var.config_bucket },
        { name = "CONFIG_PREFIX", value = local.prefix },
        { name = "FACILITIES", value = join(" ", keys(var.facility_etags)) },
        { name = "APP_UID", value = tostring(var.config_sync.app_uid) },
        { name = "HOME", value = "/tmp" },
      ]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch" },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "migrate"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      dependsOn              = [{ containerName = "config-sync", condition = "SUCCESS" }]
      entryPoint             = ["/bin/sh", "-ec"]
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
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch", readOnly = true },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
  ])
}

resource "aws_security_group" "migrate" {
  name_prefix = "${var.name}-migrate-"
  description = "Migrate task: no inbound; HTTPS out for S3, Secrets Manager, logs and the image"
  vpc_id      = var.vpc_id
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
  triggers_replace = [aws_ecs_task_definition.migrate.arn, aws_s3_object.cloud_yaml.etag]
  provisioner "local-exec" {
    command = "${path.module}/run-migrate.sh"
    environment = {
      AWS_REGION      = data.aws_region.current.name
      CLUSTER         = var.cluster_name
      TASK_DEFINITION = aws_ecs_task_definition.migrate.arn
      SUBNETS         = join(",", var.private_subnet_ids)
      SECURITY_GROUPS = join(",", [aws_security_group.migrate.id, var.database_client_security_group_id])
      LOG_GROUP       = aws_cloudwatch_log_group.migrate.name
    }
  }
}
