# The Dash dashboard on the read-only database role, behind an HTTPS load balancer (HTTP
# only redirects), reachable from dashboard_cidrs, with AWS WAF's managed rules in front.

locals {
  port       = 8050
  prefix     = "dashboard"
  facilities = sort(keys(var.platform.facility_etags))
  # The format `locowatch dashboard user add` writes (dashboard/users.py).
  users_file = yamlencode({ users = {
    for name, user in var.users : name => merge(
      { role = user.role, facilities = user.facilities },
      user.password_hash == null ? {} : { password = user.password_hash },
    )
  } })
  command = concat(
    ["locowatch", "dashboard", "--host", "0.0.0.0", "--port", tostring(local.port)],
    flatten([for f in local.facilities : ["--facility", "/etc/locowatch/facilities/${f}.yaml"]]),
  )
}

# The users file holds argon2 password hashes only; the bucket is KMS-encrypted and private.
resource "aws_s3_object" "users" {
  count        = length(var.users) > 0 ? 1 : 0
  bucket       = var.platform.config_bucket
  key          = "${local.prefix}/users"
  content      = local.users_file
  content_type = "application/yaml"
}

# Roles, log group and the task definition (config-sync, then the dashboard): modules/ecs-task.
module "task" {
  source             = "../ecs-task"
  name               = var.name
  app                = "dashboard"
  platform           = var.platform
  secret_arns        = [var.database_reader_secret_arn]
  cpu                = var.cpu
  memory             = var.memory
  cpu_architecture   = var.cpu_architecture
  log_retention_days = var.log_retention_days
  tasks = {
    dashboard = {
      family            = "${var.name}-dashboard"
      config_prefix     = local.prefix
      facilities        = local.facilities
      log_stream_prefix = "dashboard"
      container = {
        name         = "dashboard"
        image        = var.image
        command      = local.command
        portMappings = [{ containerPort = local.port, protocol = "tcp" }]
        environment = concat(
          [
            { name = "LOCOWATCH_LOG_FORMAT", value = "json" },
            # Not read by the dashboard: a changed facility file or user list redeploys it.
            { name = "CONFIG_VERSION", value = sha1(join(",", concat(values(var.platform.facility_etags), [local.users_file]))) },
          ],
          length(var.users) > 0 ? [{ name = "LOCOWATCH_DASHBOARD_USERS", value = "/etc/locowatch/users" }] : [],
        )
        secrets = [{ name = "LOCOWATCH_DB", valueFrom = "${var.database_reader_secret_arn}:url::" }]
      }
    }
  }
}

resource "aws_ecs_service" "dashboard" {
  name                              = "dashboard"
  cluster                           = var.platform.cluster_arn
  task_definition                   = module.task.task_definition_arns.dashboard
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.platform.private_subnet_ids
    security_groups  = [aws_security_group.task.id, var.platform.database_client_security_group_id]
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
