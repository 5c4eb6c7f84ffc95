terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.70, < 6.0" }
    # Only used in mode = "managed"; it must still be configured in "vm" mode (see the example).
    timescale = { source = "timescale/timescale", version = ">= 2.8, < 3.0" }
  }
}
