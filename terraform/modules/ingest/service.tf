# One ECS service per replica, each with exactly one task: a facility's FSE must run in one
# process only, so a deployment stops the old task before it starts the new one
# (maximum 100 %, minimum 0 %). Gateways buffer on their side meanwhile and resume from their
# last ack; the new task's FSE resumes from its last snapshot.

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "ingest" {
  name              = "/${var.name}/ingest"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "replica" {
  for_each                 = var.replicas
  family                   = "${var.name}-ingest-${each.key}"
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
  volume { name = "config" } # task-local: written by config-sync, read-only for ingest
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
        { name = "CONFIG_PREFIX", value = "ingest/${each.key}" },
        { name = "FACILITIES", value = join(" ", each.value) },
        { name = "APP_UID", value = tostring(var.config_sync.app_uid) },
        { name = "HOME", value = "/tmp" },
      ]
      secrets = [
        { name = "TLS_CERT", valueFrom = aws_ssm_parameter.backend_tls["cert"].arn },
        { name = "TLS_KEY", valueFrom = aws_ssm_parameter.backend_tls["key"].arn },
      ]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch" },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.ingest.name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = "${each.key}-config"
        }
      }
    },
    {
      name                   = "ingest"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      dependsOn              = [{ containerName = "config-sync", condition = "SUCCESS" }]
      command                = ["locowatch", "cloud", "run", "--config", "/etc/locowatch/cloud.yaml"]
      portMappings = [
        { containerPort = local.grpc_port, protocol = "tcp" },
        { containerPort = local.metrics_port, protocol = "tcp" },
        { containerPort = local.fse_port, protocol = "tcp" },
      ]
      environment = [
        { name = "LOCOWATCH_LOG_FORMAT", value = "json" },
        # Not read by ingest: they change the task definition, and so redeploy the replica,
        # when its cloud.yaml changed, and order it after the migrate run.
        { name = "CONFIG_VERSION", value = sha1(join(",", concat([aws_s3_object.cloud_yaml[each.key].etag], [for f in each.value : var.facility_etags[f]]))) },
        { name = "MIGRATION", value = var.migration_done },
      ]
      secrets = [{ name = "LOCOWATCH_DB", valueFrom = "${var.database_writer_secret_arn}:url::" }]
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/locowatch", readOnly = true },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      stopTimeout = 30 # SIGTERM: ingest stops taking batches and commits what it has
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.ingest.name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = each.key
        }
      }
    },
  ])
}

resource "aws_ecs_service" "replica" {
  for_each                           = var.replicas
  name                               = "ingest-${each.key}"
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.replica[each.key].arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_maximum_percent         = 100
  deployment_minimum_healthy_percent = 0
  health_check_grace_period_seconds  = 60
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.task.id, var.database_client_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.replica[each.key].arn
    container_name   = "ingest"
    container_port   = local.grpc_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener_rule.facility]
}
