variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "mode" {
  description = "Where TimescaleDB runs: \"managed\" (Timescale's cloud service, peered into the VPC) or \"vm\" (an EC2 instance running the official timescale/timescaledb image)."
  type        = string
  validation {
    condition     = contains(["managed", "vm"], var.mode)
    error_message = "mode must be \"managed\" or \"vm\"."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the connection secrets, the VM's volumes and its backups."
  type        = string
}

variable "passwords" {
  description = "Passwords of the owner, writer and reader roles (the secrets module's database_passwords)."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = length(setsubtract(["owner", "writer", "reader"], keys(var.passwords))) == 0
    error_message = "passwords needs the keys owner, writer and reader."
  }
}

variable "vpc_id" {
  description = "VPC the database (or its peering) lives in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets; the VM goes into the first."
  type        = list(string)
}

variable "private_subnet_cidrs" {
  description = "CIDR blocks of private_subnet_ids; the VM takes a fixed address in the first."
  type        = list(string)
}

variable "private_route_table_ids" {
  description = "Route tables of the private subnets; managed mode routes the Timescale VPC through the peering."
  type        = list(string)
}

# --- mode = "vm" -------------------------------------------------------------------------

variable "vm_instance_type" {
  description = "EC2 instance type of the database VM (mode = \"vm\")."
  type        = string
  default     = "m7g.large"
}

variable "vm_architecture" {
  description = "CPU architecture of vm_instance_type: arm64 (Graviton) or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.vm_architecture)
    error_message = "vm_architecture must be arm64 or x86_64."
  }
}

variable "vm_data_volume_gb" {
  description = "Size of the encrypted gp3 data volume of the VM, in GiB (mode = \"vm\")."
  type        = number
  default     = 200
  validation {
    condition     = var.vm_data_volume_gb >= 20 && var.vm_data_volume_gb <= 16384
    error_message = "vm_data_volume_gb must be between 20 and 16384."
  }
}

variable "timescaledb_image" {
  description = "The official TimescaleDB image the VM runs, with an exact tag (mode = \"vm\")."
  type        = string
  default     = "timescale/timescaledb:2.19.3-pg17"
  validation {
    condition     = can(regex("^timescale/timescaledb(-ha)?:[0-9][^:]*$", var.timescaledb_image))
    error_message = "Use timescale/timescaledb with an exact version tag (not latest)."
  }
}

variable "backup_retention_days" {
  description = "Days to keep the daily backups of the VM's data volume (mode = \"vm\")."
  type        = number
  default     = 35
  validation {
    condition     = var.backup_retention_days >= 7
    error_message = "Keep backups at least 7 days."
  }
}

# --- mode = "managed" ----------------------------------------------------------------------

variable "timescale_milli_cpu" {
  description = "CPU of the managed service in thousandths of a core: 500, 1000, 2000, 4000, 8000, 16000 or 32000."
  type        = number
  default     = 2000
  validation {
    condition     = contains([500, 1000, 2000, 4000, 8000, 16000, 32000], var.timescale_milli_cpu)
    error_message = "timescale_milli_cpu must be one of 500, 1000, 2000, 4000, 8000, 16000, 32000."
  }
}

variable "timescale_memory_gb" {
  description = "Memory of the managed service in GB; Timescale pairs it with CPU (4 GB per 1000 milli-CPU)."
  type        = number
  default     = 8
}

variable "timescale_vpc_cidr" {
  description = "CIDR of the Timescale-side VPC that is peered with ours; must not overlap the VPC (mode = \"managed\")."
  type        = string
  default     = "10.41.0.0/24"
  validation {
    condition     = can(cidrhost(var.timescale_vpc_cidr, 0))
    error_message = "timescale_vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "timescale_ha_replica" {
  description = "Give the managed service a standby replica that takes over on failure (mode = \"managed\")."
  type        = bool
  default     = true
}

variable "timescale_read_replica" {
  description = "Add a read replica and point the reader role (dashboard, reports) at it (mode = \"managed\")."
  type        = bool
  default     = false
}
