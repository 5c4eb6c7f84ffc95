output "task_definition_arns" {
  description = "Key of each entry of tasks -> the ARN of its task definition (latest revision)."
  value       = { for key, task in aws_ecs_task_definition.this : key => task.arn }
}

output "log_group_name" {
  description = "The app's log group (both containers of every task log to it)."
  value       = aws_cloudwatch_log_group.this.name
}
