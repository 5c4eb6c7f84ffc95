output "task_definition_arn" {
  description = "The migrate task definition."
  value       = module.task.task_definition_arns.migrate
}

output "run" {
  description = "What run-migrate.sh needs to run the task by hand (with run_on_apply = false)."
  value = {
    cluster         = var.platform.cluster_name
    task_definition = module.task.task_definition_arns.migrate
    subnets         = join(",", var.platform.private_subnet_ids)
    security_groups = join(",", [aws_security_group.migrate.id, var.platform.database_client_security_group_id])
    log_group       = module.task.log_group_name
  }
}

output "done" {
  description = "Changes after each migrate run during apply; ingest depends on it so it starts on a current schema."
  value       = var.run_on_apply ? terraform_data.run[0].id : module.task.task_definition_arns.migrate
}
