# The Dash dashboard on the read-only database role, behind an HTTPS load balancer (HTTP
# only redirects), reachable from dashboard_cidrs, with AWS WAF's managed rules in front.

data "aws_region" "current" {}

locals {
  port       = 8050
  prefix     = "dashboard"
  facilities = sort(keys(var.facility_etags))
  users_file = join("", [for name, digest in var.users : "${name}:${digest}\n"])
  command = concat(
    ["locowatch", "dashboard", "--host", "0.0.0.0", "--port", tostring(local.port)],
    flatten([for f in local.facilities : ["--facility", "/etc/locowatch/facilities/${f}.yaml"]]),
  )
  log_options = {
    awslogs-group         = aws_cloudwatch_log_group.dashboard.name
    awslogs-region        = data.aws_region.current.name
    awslogs-stream-prefix = "dashboard"
  }
}

# The users file holds password hashes only; the bucket is KMS-encrypted and private.
resource "aws_s3_object" "users" {
  count        = length(var.users) > 0 ? 1 : 0
  bucket       = var.config_bucket
  key          = "${local.prefix}/users"
  content      = local.users_file
  content_type = "text/plain"
}

resource "aws_cloudwatch_log_group" "dashboard" {
  name              = "/${var.name}/dashboard"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "dashboard" {
  family                   = "${var.name}-dashboard"
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
        { name = "FACILITIES", value = join(" ", local.facilities) },
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
      name                   = "dashboard"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      dependsOn              = [{ containerName = "config-sync", condition = "SUCCESS" }]
      command                = local.command
      portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
      environment = concat(
        [
          { name = "LOCOWATCH_LOG_FORMAT", value = "json" },
          # Not read by the dashboard: a changed facility file or user list redeploys it.
          { name = "CONFIG_VERSION", value = sha1(join(",", concat(values(var.facility_etags), [local.users_file]))) },
        ],
        length(var.users) > 0 ? [{ name = "LOCOWATCH_DASHBOARD_USERS", value = "/etc/locowatch/users" }] : [],
      )
      secrets = [{ name = "LOCOWATCH_DB", valueFrom = "${var.database_reader_secret_arn}:url::" }]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch", readOnly = true },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
  ])
}

resource "aws_ecs_service" "dashboard" {
  name                              = "dashboard"
  cluster                           = var.cluster_arn
  task_definition                   = aws_ecs_task_definition.dashboard.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.task.id, var.database_client_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.dashboard.arn
    container_name   = "dashboard"
    container_port   = local.port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}
