output "gateway_endpoints" {
  description = "Facility id -> cloud.endpoint for its gateways' facility file."
  value       = module.ingest.gateway_endpoints
}

output "gateway_token_secrets" {
  description = "Gateway id -> Secrets Manager secret with its token (aws secretsmanager get-secret-value --secret-id ...)."
  value       = module.secrets.gateway_token_secret_arns
}

output "facility_replica" {
  description = "Facility id -> the ingest replica it is pinned to."
  value       = module.ingest.facility_replica
}

output "ingest_load_balancer" {
  description = "DNS name to point *.<ingest_domain> at (when route53_zone_id is null)."
  value       = module.ingest.load_balancer_dns_name
}

output "dashboard_url" {
  description = "The dashboard."
  value       = module.dashboard.url
}

output "dashboard_load_balancer" {
  description = "DNS name to point dashboard_domain at (when route53_zone_id is null)."
  value       = module.dashboard.load_balancer_dns_name
}

output "database" {
  description = "Database host and port, and the secrets with each role's connection info (reports use the reader's url)."
  value = {
    host          = module.database.host
    port          = module.database.port
    owner_secret  = module.database.owner_secret_arn
    writer_secret = module.database.writer_secret_arn
    reader_secret = module.database.reader_secret_arn
  }
}

output "migrate" {
  description = "What terraform/modules/migrate/run-migrate.sh needs to run migrations by hand."
  value       = module.migrate.run
}
