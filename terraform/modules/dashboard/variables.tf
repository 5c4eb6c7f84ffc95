variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "image" {
  description = "The locowatch cloud image (built from deploy/cloud/Dockerfile), with an exact tag or digest."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for dashboard_domain."
  type        = string
}

variable "dashboard_domain" {
  description = "Host name users open the dashboard at, e.g. dashboard.example.com."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.dashboard_domain))
    error_message = "dashboard_domain must be a lower-case DNS name."
  }
}

variable "route53_zone_id" {
  description = "Route 53 zone of dashboard_domain; when set, the name is pointed at the load balancer. Null: manage DNS elsewhere."
  type        = string
  default     = null
}

variable "dashboard_cidrs" {
  description = "CIDR blocks allowed to open the dashboard (offices, VPN)."
  type        = list(string)
  validation {
    condition     = length(var.dashboard_cidrs) > 0 && alltrue([for c in var.dashboard_cidrs : can(cidrhost(c, 0))])
    error_message = "List at least one CIDR block."
  }
}

variable "users" {
  description = "Dashboard users: name -> argon2 hash of the password ('locowatch dashboard user hash' prints one; null for users who log in through a single sign-on proxy), role (viewer, installer, admin) and the facility ids it sees ([\"*\"]: all). Empty: no login, dashboard_cidrs only."
  type = map(object({
    password_hash = optional(string)
    role          = optional(string, "viewer")
    facilities    = list(string)
  }))
  default = {}
  validation {
    condition     = alltrue([for u in values(var.users) : u.password_hash == null || startswith(coalesce(u.password_hash, "-"), "$argon2")])
    error_message = "password_hash is an argon2 hash ('locowatch dashboard user hash'); SHA-256 digests are no longer accepted."
  }
  validation {
    condition     = alltrue([for u in values(var.users) : contains(["viewer", "installer", "admin"], u.role)])
    error_message = "role is viewer, installer or admin."
  }
}

variable "desired_count" {
  description = "Dashboard tasks; they are stateless, any number works."
  type        = number
  default     = 2
}

variable "cpu" {
  description = "Fargate CPU units of each dashboard task."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate memory of each dashboard task, in MiB."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "platform" {
  description = "The deployment's shared pieces (the example's local.platform): the cluster module's cluster, config bucket, config_sync init container, facility_etags (the dashboard shows every facility) and logs bucket; the KMS key; the VPC and its subnets; the database client security group."
  type = object({
    cluster_arn                       = string
    config_bucket                     = string
    config_bucket_arn                 = string
    config_sync                       = object({ image = string, script = string, app_uid = number })
    facility_etags                    = map(string)
    logs_bucket                       = string
    kms_key_arn                       = string
    vpc_id                            = string
    public_subnet_ids                 = list(string)
    private_subnet_ids                = list(string)
    database_client_security_group_id = string
  })
}

variable "database_reader_secret_arn" {
  description = "Secret with the reader login's connection info."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the dashboard's and the WAF's logs (at least 365: modules/ecs-task checks)."
  type        = number
  default     = 365
}
