variable "name" {
  description = "Name of this deployment; prefixes every resource (e.g. locowatch-prod)."
  type        = string
  default     = "locowatch"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name: lower-case letters, digits and '-', starting with a letter, at most 16 characters (load balancer names are short)."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "image" {
  description = "The locowatch cloud image built from deploy/cloud/Dockerfile, pinned by tag or digest (e.g. 123456789012.dkr.ecr.eu-central-1.amazonaws.com/locowatch-cloud:0.1.0)."
  type        = string
  validation {
    condition     = !endswith(var.image, ":latest") && (strcontains(var.image, ":") || strcontains(var.image, "@sha256:"))
    error_message = "Pin the image by an exact tag or a digest, not latest."
  }
}

variable "app_uid" {
  description = "Numeric user id the image runs as (deploy/cloud/Dockerfile)."
  type        = number
  default     = 10001
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "facility_files" {
  description = "Facility id -> path of its facility YAML (relative to this directory)."
  type        = map(string)
}

variable "replicas" {
  description = "Ingest replica name -> facility ids pinned to it. Every facility on exactly one replica."
  type        = map(list(string))
}

variable "gateways" {
  description = "Gateway id -> facility id. Terraform makes each gateway's token and keeps it in Secrets Manager."
  type        = map(string)
}

variable "token_generation" {
  description = "Gateway id -> number; raise it to give that gateway a new token."
  type        = map(number)
  default     = {}
}

variable "ingest_domain" {
  description = "Gateways of facility F connect to F.<ingest_domain>:<ingest_port>."
  type        = string
}

variable "ingest_certificate_arn" {
  description = "ACM certificate for *.<ingest_domain>."
  type        = string
}

variable "ingest_port" {
  description = "Port of the ingest listener."
  type        = number
  default     = 443
}

variable "gateway_cidrs" {
  description = "Public CIDR blocks of the gateways: the only sources that reach ingest."
  type        = list(string)
}

variable "dashboard_domain" {
  description = "Host name of the dashboard."
  type        = string
}

variable "dashboard_certificate_arn" {
  description = "ACM certificate for dashboard_domain."
  type        = string
}

variable "dashboard_cidrs" {
  description = "CIDR blocks allowed to open the dashboard."
  type        = list(string)
}

variable "dashboard_users" {
  description = "Dashboard users: name -> { password_hash (argon2, 'locowatch dashboard user hash'), role, facilities }. Empty: no login."
  type = map(object({
    password_hash = optional(string)
    role          = optional(string, "viewer")
    facilities    = list(string)
  }))
  default = {}
}

variable "route53_zone_id" {
  description = "Route 53 zone holding ingest_domain and dashboard_domain; null to manage DNS yourself."
  type        = string
  default     = null
}

variable "database_mode" {
  description = "TimescaleDB: \"managed\" (Timescale's cloud service) or \"vm\" (EC2 with the official image)."
  type        = string
  default     = "vm"
  validation {
    condition     = contains(["managed", "vm"], var.database_mode)
    error_message = "database_mode must be \"managed\" or \"vm\"."
  }
}

variable "timescale_project_id" {
  description = "Timescale project id (database_mode = \"managed\")."
  type        = string
  default     = null
}

variable "timescale_access_key" {
  description = "Timescale client credentials: access key (database_mode = \"managed\"); better from TF_VAR_timescale_access_key."
  type        = string
  default     = null
}

variable "timescale_secret_key" {
  description = "Timescale client credentials: secret key (database_mode = \"managed\"); better from TF_VAR_timescale_secret_key."
  type        = string
  default     = null
  sensitive   = true
}

variable "retention" {
  description = "Days to keep raw estimations (raw_days) and states and events (state_days)."
  type        = object({ raw_days = number, state_days = number })
  default     = { raw_days = 30, state_days = 730 }
}

variable "run_migrations_on_apply" {
  description = "Run the migrate task during apply (needs the AWS CLI here); false: run terraform/modules/migrate/run-migrate.sh yourself."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the load balancers from deletion; set false and apply before `terraform destroy`."
  type        = bool
  default     = true
}
