variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "app" {
  description = "The app (dashboard, ingest, migrate): names the roles NAME-APP-execution and NAME-APP-task and the log group /NAME/APP; its tasks may read the config bucket's APP/ prefix and the facility files."
  type        = string
}

variable "platform" {
  description = "The app module's platform (the example's local.platform); this module reads the config bucket, the init container (the cluster module's config_sync) and the KMS key from it."
  type = object({
    config_bucket     = string
    config_bucket_arn = string
    config_sync       = object({ image = string, script = string, app_uid = number })
    kms_key_arn       = string
  })
}

variable "secret_arns" {
  description = "Secrets Manager secrets the execution role resolves into the app's environment."
  type        = list(string)
}

variable "ssm_parameter_arns" {
  description = "SSM SecureString parameters the execution role resolves into the containers' environment, if any."
  type        = list(string)
  default     = []
}

variable "secrets_policy_name" {
  description = "Name of the execution role's inline policy for secrets; null: read-APP-secrets."
  type        = string
  default     = null
}

variable "cpu" {
  description = "Fargate CPU units of each task (1024 = one vCPU)."
  type        = number
}

variable "memory" {
  description = "Fargate memory of each task, in MiB."
  type        = number
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_retention_days" {
  description = "Days to keep the app's logs."
  type        = number
  validation {
    condition     = var.log_retention_days >= 365
    error_message = "Keep logs at least a year (365 days)."
  }
}

variable "tasks" {
  description = <<-EOT
    Task definitions of the app, by a key of the caller's choosing: family; config_prefix and
    facilities, what config-sync copies to /etc/locowatch (and config_sync_secrets, secrets it
    gets as environment variables); log_stream_prefix of the app's container (and
    config_sync_log_stream_prefix of config-sync's, the same when null); container, the app's
    container definition without what this module adds (essential, readonlyRootFilesystem,
    dependsOn config-sync, mountPoints, logConfiguration).
  EOT
  type = map(object({
    family                        = string
    config_prefix                 = string
    facilities                    = list(string)
    config_sync_secrets           = optional(list(object({ name = string, valueFrom = string })))
    log_stream_prefix             = string
    config_sync_log_stream_prefix = optional(string)
    container                     = any
  }))
}
