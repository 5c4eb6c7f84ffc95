output "host" {
  description = "Host name or address of the primary."
  value       = local.host
}

output "port" {
  description = "PostgreSQL port of the primary."
  value       = local.port
}

output "dbname" {
  description = "Database name (tsdb on the managed service, locowatch on the VM)."
  value       = local.dbname
}

output "owner_secret_arn" {
  description = "Secret with the owner's connection info (migrations only)."
  value       = aws_secretsmanager_secret.role["owner"].arn
}

output "writer_secret_arn" {
  description = "Secret with the writer login's connection info (ingest)."
  value       = aws_secretsmanager_secret.role["writer"].arn
}

output "reader_secret_arn" {
  description = "Secret with the reader login's connection info (dashboard, reports); the read replica when there is one."
  value       = aws_secretsmanager_secret.role["reader"].arn
}

output "writer_user" {
  description = "Login user ingest connects as (member of locowatch_writer)."
  value       = local.writer_user
}

output "reader_user" {
  description = "Login user the dashboard and reports connect as (member of locowatch_reader)."
  value       = local.reader_user
}

output "client_security_group_id" {
  description = "Security group a task must carry to reach the database."
  value       = aws_security_group.client.id
}
