# State addresses from before the roles, the log group and the task definition moved into
# modules/ecs-task: terraform renames them in the state instead of replacing them (a
# replaced log group would lose its logs). Delete once every deployment has applied this.

moved {
  from = aws_iam_role.execution
  to   = module.task.aws_iam_role.execution
}

moved {
  from = aws_iam_role_policy_attachment.execution
  to   = module.task.aws_iam_role_policy_attachment.execution
}

moved {
  from = aws_iam_role_policy.execution_secrets
  to   = module.task.aws_iam_role_policy.execution_secrets
}

moved {
  from = aws_iam_role.task
  to   = module.task.aws_iam_role.task
}

moved {
  from = aws_iam_role_policy.task_config
  to   = module.task.aws_iam_role_policy.task_config
}

moved {
  from = aws_cloudwatch_log_group.migrate
  to   = module.task.aws_cloudwatch_log_group.this
}

moved {
  from = aws_ecs_task_definition.migrate
  to   = module.task.aws_ecs_task_definition.this["migrate"]
}
