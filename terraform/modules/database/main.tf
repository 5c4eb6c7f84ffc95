# TimescaleDB, either Timescale's managed service (managed.tf) or a VM with the official image
# (vm.tf), chosen by var.mode. Both end the same way: a host and port, and one Secrets Manager
# secret per role with everything a client needs, including a postgresql:// URL for --db.

data "aws_region" "current" {}

locals {
  managed = var.mode == "managed"

  # Login users: ingest logs in as a member of locowatch_writer, the dashboard and reports as
  # a member of locowatch_reader. The migrate task creates them (see modules/migrate).
  writer_user = "locowatch_ingest"
  reader_user = "locowatch_dashboard"

  host     = local.managed ? timescale_service.main[0].hostname : local.vm_address
  port     = local.managed ? timescale_service.main[0].port : 5432
  dbname   = local.managed ? "tsdb" : "locowatch"
  owner    = local.managed ? timescale_service.main[0].username : "postgres"
  replica  = local.managed && var.timescale_read_replica
  ro_host  = local.replica ? timescale_service.read_replica[0].hostname : local.host
  ro_port  = local.replica ? timescale_service.read_replica[0].port : local.port
  sslmode  = "require" # both modes serve TLS; the VM's certificate is self-signed
  db_cidrs = local.managed ? [var.timescale_vpc_cidr] : ["${local.vm_address}/32"]

  roles = {
    owner  = { username = local.owner, host = local.host, port = local.port }
    writer = { username = local.writer_user, host = local.host, port = local.port }
    reader = { username = local.reader_user, host = local.ro_host, port = local.ro_port }
  }
}

resource "aws_secretsmanager_secret" "role" {
  for_each    = local.roles
  name        = "${var.name}/database/${each.key}"
  description = "TimescaleDB ${each.key} role of ${var.name}: host, port, dbname, username, password, url."
  kms_key_id  = var.kms_key_arn
  #checkov:skip=CKV2_AWS_57:Rotation is `terraform apply -replace` of the password, then the migrate task (it re-passwords the login roles) and a redeploy; a rotation Lambda would need owner rights inside the VPC and would leave terraform's copy stale.
}

resource "aws_secretsmanager_secret_version" "role" {
  for_each  = local.roles
  secret_id = aws_secretsmanager_secret.role[each.key].id
  secret_string = jsonencode({
    engine   = "postgres"
    host     = each.value.host
    port     = each.value.port
    dbname   = local.dbname
    username = each.value.username
    password = var.passwords[each.key]
    url      = "postgresql://${each.value.username}:${var.passwords[each.key]}@${each.value.host}:${each.value.port}/${local.dbname}?sslmode=${local.sslmode}"
  })
}

# Tasks that talk to the database (ingest, dashboard, migrate) carry this group: it is the
# only way out to the database port, and the VM's group lets in nothing else.
resource "aws_security_group" "client" {
  name_prefix = "${var.name}-db-client-"
  description = "Members may connect to TimescaleDB"
  vpc_id      = var.vpc_id
  #checkov:skip=CKV2_AWS_5:Attached by the ingest, dashboard and migrate modules to their tasks; checkov does not follow it across modules.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "client_to_database" {
  for_each          = toset(local.db_cidrs)
  security_group_id = aws_security_group.client.id
  description       = "TimescaleDB"
  ip_protocol       = "tcp"
  from_port         = local.port
  to_port           = local.port
  cidr_ipv4         = each.value
}
