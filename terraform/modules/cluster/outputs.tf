output "cluster_arn" {
  description = "ARN of the ECS cluster that runs ingest, the dashboard and migrations."
  value       = aws_ecs_cluster.main.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster (for `aws ecs run-task --cluster`)."
  value       = aws_ecs_cluster.main.name
}

output "config_bucket" {
  description = "Name of the config bucket (facility files, rendered cloud.yaml files)."
  value       = aws_s3_bucket.config.id
}

output "config_bucket_arn" {
  description = "ARN of the config bucket."
  value       = aws_s3_bucket.config.arn
}

output "facility_etags" {
  description = "Facility id -> ETag of its file in the config bucket (changes when the file does)."
  value       = { for id, object in aws_s3_object.facility : id => object.etag }
}

output "logs_bucket" {
  description = "Name of the bucket load balancers write access logs to (under alb/)."
  value       = aws_s3_bucket.logs.id
}

output "config_sync" {
  description = "The init container every task runs first: image, shell script and the uid files are handed to."
  value = {
    image   = var.config_sync_image
    script  = file("${path.module}/config-sync.sh")
    app_uid = var.app_uid
  }
}
