# One ECS service per replica, each with exactly one task: a facility's FSE must run in one
# process only, so a deployment stops the old task before it starts the new one
# (maximum 100 %, minimum 0 %). Gateways buffer on their side meanwhile and resume from their
# last ack; the new task's FSE resumes from its last snapshot.

# Roles, log group and one task definition per replica (config-sync, then ingest):
# modules/ecs-task. The init container also gets the backend TLS files from SSM.
module "task" {
  source             = "../ecs-task"
  name               = var.name
  app                = "ingest"
  platform           = var.platform
  secret_arns        = [var.database_writer_secret_arn]
  ssm_parameter_arns = [for p in aws_ssm_parameter.backend_tls : p.arn]
  cpu                = var.cpu
  memory             = var.memory
  cpu_architecture   = var.cpu_architecture
  log_retention_days = var.log_retention_days
  tasks = {
    for replica, facilities in var.replicas : replica => {
      family        = "${var.name}-ingest-${replica}"
      config_prefix = "ingest/${replica}"
      facilities    = facilities
      config_sync_secrets = [
        { name = "TLS_CERT", valueFrom = aws_ssm_parameter.backend_tls["cert"].arn },
        { name = "TLS_KEY", valueFrom = aws_ssm_parameter.backend_tls["key"].arn },
      ]
      log_stream_prefix             = replica
      config_sync_log_stream_prefix = "${replica}-config"
      container = {
        name    = "ingest"
        image   = var.image
        command = ["locowatch", "cloud", "run", "--config", "/etc/locowatch/cloud.yaml"]
        portMappings = [
          { containerPort = local.grpc_port, protocol = "tcp" },
          { containerPort = local.metrics_port, protocol = "tcp" },
          { containerPort = local.fse_port, protocol = "tcp" },
        ]
        environment = [
          { name = "LOCOWATCH_LOG_FORMAT", value = "json" },
          # Not read by ingest: they change the task definition, and so redeploy the replica,
          # when its cloud.yaml changed, and order it after the migrate run.
          { name = "CONFIG_VERSION", value = sha1(join(",", concat([aws_s3_object.cloud_yaml[replica].etag], [for f in facilities : var.platform.facility_etags[f]]))) },
          { name = "MIGRATION", value = var.migration_done },
        ]
        secrets     = [{ name = "LOCOWATCH_DB", valueFrom = "${var.database_writer_secret_arn}:url::" }]
        stopTimeout = 30 # SIGTERM: ingest stops taking batches and commits what it has
      }
    }
  }
}

resource "aws_ecs_service" "replica" {
  for_each                           = var.replicas
  name                               = "ingest-${each.key}"
  cluster                            = var.platform.cluster_arn
  task_definition                    = module.task.task_definition_arns[each.key]
  desired_count                      = 1
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_maximum_percent         = 100
  deployment_minimum_healthy_percent = 0
  health_check_grace_period_seconds  = 60
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.platform.private_subnet_ids
    security_groups  = [aws_security_group.task.id, var.platform.database_client_security_group_id]
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
