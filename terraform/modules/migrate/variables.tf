variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "image" {
  description = "The locowatch cloud image (built from deploy/cloud/Dockerfile), with an exact tag or digest."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster to run the task in."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster (for the run-task command)."
  type        = string
}

variable "config_bucket" {
  description = "Name of the config bucket."
  type        = string
}

variable "config_bucket_arn" {
  description = "ARN of the config bucket."
  type        = string
}

variable "config_sync" {
  description = "The cluster module's config_sync output: init container image, script, app uid."
  type        = object({ image = string, script = string, app_uid = number })
}

variable "facility_etags" {
  description = "The cluster module's facility_etags: facility id -> ETag of its file in the config bucket."
  type        = map(string)
}

variable "retention" {
  description = "Days to keep raw estimations (raw_days) and states and events (state_days); migrate sets the policies."
  type        = object({ raw_days = number, state_days = number })
}

variable "kms_key_arn" {
  description = "KMS key of the secrets, the config bucket and the log group."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the task."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets the task runs in."
  type        = list(string)
}

variable "database_client_security_group_id" {
  description = "The database module's client security group."
  type        = string
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
  description = "Days to keep the task's logs."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 365
    error_message = "Keep logs at least a year (365 days)."
  }
}
