# The ECS plumbing every locowatch app (migrate, ingest, the dashboard) has in common:
#
# - the execution role: what ECS needs to start a task (pull the image, write logs, resolve
#   the app's secrets into environment variables);
# - the task role: what the containers may do themselves (the init container reads the app's
#   prefix and the facility files from the config bucket);
# - the app's KMS-encrypted log group;
# - one Fargate task definition per entry of `tasks`: the config-sync init container copies
#   the task's config prefix and facilities onto a task-local volume and exits; then the app's
#   container (passed in) starts, mounts that volume read-only at /etc/locowatch, with a
#   read-only root file system, and logs to the group.

data "aws_region" "current" {}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-${var.app}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  name = coalesce(var.secrets_policy_name, "read-${var.app}-secrets")
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{ Effect = "Allow", Action = "secretsmanager:GetSecretValue", Resource = var.secret_arns }],
      length(var.ssm_parameter_arns) > 0 ? [{ Effect = "Allow", Action = "ssm:GetParameters", Resource = var.ssm_parameter_arns }] : [],
      [{ Effect = "Allow", Action = "kms:Decrypt", Resource = var.platform.kms_key_arn }],
    )
  })
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-${var.app}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_config" {
  name = "read-config"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = ["${var.platform.config_bucket_arn}/${var.app}/*", "${var.platform.config_bucket_arn}/facilities/*"]
      },
      { Effect = "Allow", Action = "s3:ListBucket", Resource = var.platform.config_bucket_arn },
      { Effect = "Allow", Action = "kms:Decrypt", Resource = var.platform.kms_key_arn },
    ]
  })
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/${var.name}/${var.app}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.platform.kms_key_arn
}

locals {
  log_options = {
    awslogs-group  = aws_cloudwatch_log_group.this.name
    awslogs-region = data.aws_region.current.name
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each                 = var.tasks
  family                   = each.value.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  volume { name = "config" } # task-local: written by config-sync, read-only for the app
  volume { name = "tmp" }

  container_definitions = jsonencode([
    {
      name                   = "config-sync"
      image                  = var.platform.config_sync.image
      essential              = false
      user                   = "0" # writes the volume, then hands it to the app's uid
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [var.platform.config_sync.script]
      environment = [
        { name = "CONFIG_BUCKET", value = var.platform.config_bucket },
        { name = "CONFIG_PREFIX", value = each.value.config_prefix },
        { name = "FACILITIES", value = join(" ", each.value.facilities) },
        { name = "APP_UID", value = tostring(var.platform.config_sync.app_uid) },
        { name = "HOME", value = "/tmp" },
      ]
      secrets = each.value.config_sync_secrets # null (none) unless the task passes some
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch" },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { awslogs-stream-prefix = coalesce(each.value.config_sync_log_stream_prefix, each.value.log_stream_prefix) })
      }
    },
    merge(each.value.container, {
      essential              = true
      readonlyRootFilesystem = true
      dependsOn              = [{ containerName = "config-sync", condition = "SUCCESS" }]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch", readOnly = true },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { awslogs-stream-prefix = each.value.log_stream_prefix })
      }
    }),
  ])
}
