variable "name" {
  description = "Prefix of every resource name (the deployment's name, e.g. locowatch-prod)."
  type        = string
}

variable "gateways" {
  description = "Gateway id -> facility id. Each gateway gets its own token; ingest stores only its SHA-256."
  type        = map(string)
  validation {
    condition     = alltrue([for id in keys(var.gateways) : can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", id))])
    error_message = "Gateway ids are locowatch identifiers: letters, digits, '_', '.', '-', at most 63 characters."
  }
}

variable "token_generation" {
  description = "Gateway id -> a number; raise a gateway's number to issue it a new token (rotation)."
  type        = map(number)
  default     = {}
}
