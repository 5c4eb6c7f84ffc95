output "task_definition_arn" {
  description = "The migrate task definition."
  value       = aws_ecs_task_definition.migrate.arn
}

output "run" {
  description = "What run-migrate.sh needs to run the task by hand (with run_on_apply = false)."
  value = {
    cluster         = var.cluster_name
    task_definition = aws_ecs_task_definition.migrate.arn
    subnets         = join(",", var.private_subnet_ids)
    security_groups = join(",", [aws_security_group.migrate.id, var.database_client_security_group_id])
    log_group       = aws_cloudwatch_log_group.migrate.name
  }
}

output "done" {
  description = "Changes after each migrate run during apply; ingest depends on it so it starts on a current schema."
  value       = var.run_on_apply ? terraform_data.run[0].id : aws_ecs_task_definition.migrate.arn
}
