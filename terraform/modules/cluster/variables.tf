variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the config bucket and the task log groups."
  type        = string
}

variable "facility_files" {
  description = "Facility id -> path of its facility YAML on the machine running terraform (the same file its gateway uses)."
  type        = map(string)
  validation {
    # The id becomes a host name (FACILITY.<ingest_domain>), so it must be a DNS label.
    condition     = alltrue([for id in keys(var.facility_files) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", id))])
    error_message = "Facility ids must be DNS labels here: lower-case letters, digits and '-', at most 63 characters."
  }
  validation {
    # Copied to the config bucket and every cloud task: camera logins must be references
    # (credentials.password_env / password_file), never user:password@ in a source URL.
    condition     = alltrue([for path in values(var.facility_files) : !can(regex("(?m)^\\s*source:\\s*['\"]?[a-z]+://[^/@\\s]+:[^/@\\s]*@", file(path)))])
    error_message = "A facility file carries a camera password in a source URL; give credentials by reference on the gateway and copy the file without it (locowatch config strip-secrets)."
  }
}

variable "config_sync_image" {
  description = "Image of the init container that copies config from S3 into each task (needs the AWS CLI and a shell)."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.22.0"
}

variable "app_uid" {
  description = "Numeric user id the locowatch image runs as (deploy/cloud/Dockerfile); config files are handed to it."
  type        = number
  default     = 10001
}
