output "load_balancer_dns_name" {
  description = "DNS name of the ingest load balancer; point *.<ingest_domain> at it when route53_zone_id is not set."
  value       = aws_lb.ingest.dns_name
}

output "load_balancer_zone_id" {
  description = "Route 53 zone id of the load balancer (for an alias record)."
  value       = aws_lb.ingest.zone_id
}

output "gateway_endpoints" {
  description = "Facility id -> the endpoint its gateway's cloud.endpoint names."
  value       = { for f in flatten(values(var.replicas)) : f => "${f}.${var.ingest_domain}:${var.listener_port}" }
}

output "facility_replica" {
  description = "Facility id -> the replica it is pinned to."
  value       = merge([for r, facilities in var.replicas : { for f in facilities : f => r }]...)
}

output "task_security_group_id" {
  description = "Security group of the ingest tasks (e.g. to let a Prometheus in the VPC scrape them)."
  value       = aws_security_group.task.id
}
