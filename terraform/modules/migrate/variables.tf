variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "image" {
  description = "The locowatch cloud image (built from deploy/cloud/Dockerfile), with an exact tag or digest."
  type        = string
}

variable "platform" {
  description = "The deployment's shared pieces (the example's local.platform): the cluster module's cluster name (for the run-task command), config bucket, config_sync init container and facility_etags; the KMS key; the VPC and its private subnets; the database client security group."
  type = object({
    cluster_name                      = string
    config_bucket                     = string
    config_bucket_arn                 = string
    config_sync                       = object({ image = string, script = string, app_uid = number })
    facility_etags                    = map(string)
    kms_key_arn                       = string
    vpc_id                            = string
    private_subnet_ids                = list(string)
    database_client_security_group_id = string
  })
}

variable "retention" {
  description = "Days to keep raw estimations (raw_days) and states and events (state_days); migrate sets the policies."
  type        = object({ raw_days = number, state_days = number })
}

variable "database_secret_arns" {
  description = "Secrets of the owner (connects), writer and reader (their login passwords) roles."
  type        = object({ owner = string, writer = string, reader = string })
}

variable "database_users" {
  description = "Login users the task creates or re-passwords: writer (ingest) and reader (dashboard)."
  type        = object({ writer = string, reader = string })
}

variable "run_on_apply" {
  description = "Run the migrate task during `terraform apply` (needs the AWS CLI where terraform runs) whenever its task definition changes; ingest waits for it."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days to keep the task's logs (at least 365: modules/ecs-task checks)."
  type        = number
  default     = 365
}
