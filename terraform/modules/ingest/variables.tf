variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "image" {
  description = "The locowatch cloud image (built from deploy/cloud/Dockerfile), with an exact tag or digest."
  type        = string
}

variable "replicas" {
  description = "Ingest replica name -> the facility ids it serves. Each facility is on exactly one replica: its gateway's streams, its FSE and its state live there."
  type        = map(list(string))
  validation {
    condition     = length(var.replicas) > 0 && alltrue([for r, f in var.replicas : length(f) > 0 && can(regex("^[a-z0-9][a-z0-9-]{0,14}$", r))])
    error_message = "Name at least one replica, each with at least one facility; replica names are lower-case letters, digits and '-', at most 15 characters."
  }
  validation {
    condition     = length(flatten(values(var.replicas))) == length(distinct(flatten(values(var.replicas))))
    error_message = "A facility is pinned to exactly one replica: two replicas list the same facility."
  }
}

variable "gateways" {
  description = "Gateway id -> facility id it writes to."
  type        = map(string)
}

variable "gateway_token_sha256" {
  description = "Gateway id -> SHA-256 hex of its token (the secrets module's gateway_token_sha256)."
  type        = map(string)
}

variable "ingest_domain" {
  description = "Domain under which every facility has its ingest host name: a gateway of facility F connects to F.<ingest_domain>."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.ingest_domain))
    error_message = "ingest_domain must be a lower-case DNS name such as ingest.example.com."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for *.<ingest_domain>, presented to gateways."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 zone that holds ingest_domain; when set, *.<ingest_domain> is pointed at the load balancer. Leave null to manage DNS elsewhere."
  type        = string
  default     = null
}

variable "listener_port" {
  description = "Port gateways connect to (the load balancer's HTTPS listener)."
  type        = number
  default     = 443
  validation {
    condition     = var.listener_port > 0 && var.listener_port < 65536
    error_message = "listener_port must be a TCP port."
  }
}

variable "gateway_cidrs" {
  description = "Public addresses of the gateways (CIDR blocks): the only sources allowed to reach the ingest listener."
  type        = list(string)
  validation {
    condition     = length(var.gateway_cidrs) > 0 && alltrue([for c in var.gateway_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "List the gateways' CIDR blocks; 0.0.0.0/0 is refused."
  }
}

variable "cpu" {
  description = "Fargate CPU units of each replica task (1024 = one vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate memory of each replica task, in MiB."
  type        = number
  default     = 2048
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "retention" {
  description = "Days to keep raw estimations (raw_days) and states and events (state_days)."
  type        = object({ raw_days = number, state_days = number })
}

variable "db_connections" {
  description = "Database connections per replica (cloud.yaml db_connections)."
  type        = number
  default     = 4
}

variable "idle_timeout_s" {
  description = "Seconds the load balancer keeps a quiet gateway stream open."
  type        = number
  default     = 300
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "platform" {
  description = "The deployment's shared pieces (the example's local.platform): the cluster module's cluster, config bucket, config_sync init container, facility_etags and logs bucket; the KMS key; the VPC and its subnets; the database client security group."
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

variable "vpc_cidr" {
  description = "CIDR of the VPC: the metrics ports are open to it and nothing else."
  type        = string
}

variable "database_writer_secret_arn" {
  description = "Secret with the writer login's connection info."
  type        = string
}

variable "migration_done" {
  description = "The migrate module's done output: replicas are (re)deployed only after migrations ran."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the replicas' logs (at least 365: modules/ecs-task checks)."
  type        = number
  default     = 365
}
