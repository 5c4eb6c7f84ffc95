variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "cidr" {
  description = "The VPC's IPv4 CIDR block; split into 2 public and 2 private subnets."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) <= 22
    error_message = "cidr must be an IPv4 CIDR block of /22 or larger."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 365
    error_message = "Keep flow logs at least a year (365 days)."
  }
}

variable "availability_zones" {
  description = "The two availability zones to use; null: the region's zones a and b."
  type        = list(string)
  default     = null
  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) == 2
    error_message = "Name exactly two availability zones."
  }
}
