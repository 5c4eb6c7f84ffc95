output "url" {
  description = "Where users open the dashboard."
  value       = "https://${var.dashboard_domain}/"
}

output "load_balancer_dns_name" {
  description = "DNS name of the dashboard load balancer; point dashboard_domain at it when route53_zone_id is not set."
  value       = aws_lb.dashboard.dns_name
}

output "task_security_group_id" {
  description = "Security group of the dashboard tasks."
  value       = aws_security_group.task.id
}
