# Each replica's cloud.yaml, rendered from the same `replicas` map the load balancer routes
# by, so a replica always serves exactly the facilities whose host names lead to it. It
# lists those facilities and their gateways' token hashes, nothing else.

locals {
  grpc_port    = 50051
  metrics_port = 9464 # ingest
  fse_port     = 9465 # the facility state estimator process

  cloud_yaml = {
    for replica, facilities in var.replicas : replica => yamlencode({
      version          = 1
      listen           = "0.0.0.0:${local.grpc_port}"
      metrics_port     = local.metrics_port
      fse_metrics_port = local.fse_port
      # The load balancer speaks TLS to the task too (HTTPS target group); it does not
      # check this self-signed certificate, gateways see the ACM one.
      tls        = { cert_file = "tls/ingest.crt", key_file = "tls/ingest.key" }
      facilities = [for f in facilities : "facilities/${f}.yaml"]
      gateways = [
        for gateway, facility in var.gateways : {
          id           = gateway
          facility     = facility
          token_sha256 = var.gateway_token_sha256[gateway]
        } if contains(facilities, facility)
      ]
      retention      = var.retention
      db_connections = var.db_connections
    })
  }
}

resource "aws_s3_object" "cloud_yaml" {
  for_each     = var.replicas
  bucket       = var.platform.config_bucket
  key          = "ingest/${each.key}/cloud.yaml"
  content      = local.cloud_yaml[each.key]
  content_type = "application/yaml"

  lifecycle {
    precondition {
      condition     = length(setsubtract(flatten(values(var.replicas)), keys(var.platform.facility_etags))) == 0
      error_message = "replicas names a facility that has no facility file (facility_files)."
    }
    precondition {
      condition     = length(setsubtract(values(var.gateways), flatten(values(var.replicas)))) == 0
      error_message = "A gateway writes to a facility that no replica serves: pin every facility to a replica."
    }
  }
}

# The certificate of the load balancer -> task hop, in SSM as SecureStrings: ECS hands them
# to the init container, which writes them to the task-local volume (never into the image).
resource "tls_private_key" "backend" {
  algorithm = "RSA"
  rsa_bits  = 2048
}

resource "tls_self_signed_cert" "backend" {
  private_key_pem       = tls_private_key.backend.private_key_pem
  validity_period_hours = 24 * 365 * 10
  allowed_uses          = ["key_encipherment", "digital_signature", "server_auth"]
  dns_names             = ["ingest.${var.name}.internal"]
  subject {
    common_name = "ingest.${var.name}.internal"
  }
}

resource "aws_ssm_parameter" "backend_tls" {
  for_each = {
    cert = tls_self_signed_cert.backend.cert_pem
    key  = tls_private_key.backend.private_key_pem
  }
  name   = "/${var.name}/ingest/tls/${each.key}"
  type   = "SecureString"
  key_id = var.platform.kms_key_arn
  value  = each.value
}
