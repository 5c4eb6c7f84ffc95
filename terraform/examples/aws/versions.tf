# Exact provider versions for a deployment (the modules accept a range). Upgrade on purpose:
# change a version here, run `terraform init -upgrade` and read the plan.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws       = { source = "hashicorp/aws", version = "5.100.0" }
    random    = { source = "hashicorp/random", version = "3.7.2" }
    tls       = { source = "hashicorp/tls", version = "4.1.0" }
    timescale = { source = "timescale/timescale", version = "2.8.0" }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Project = "locowatch", Deployment = var.name }
  }
}

# Terraform validates this block even in "vm" mode, where no Timescale resource exists: a
# placeholder token satisfies it there and is never sent anywhere.
provider "timescale" {
  project_id   = var.database_mode == "managed" ? var.timescale_project_id : "unused-in-vm-mode"
  access_key   = var.database_mode == "managed" ? var.timescale_access_key : null
  secret_key   = var.database_mode == "managed" ? var.timescale_secret_key : null
  access_token = var.database_mode == "managed" ? null : "unused-in-vm-mode"
}
