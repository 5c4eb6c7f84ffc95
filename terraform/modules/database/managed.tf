# mode = "managed": a Timescale service attached to a Timescale VPC that is peered with ours.
# Once a service is attached to a VPC it is reachable only through the peering, so only
# this VPC's private subnets (and, within them, only members of the client group, whose
# egress is the only rule that opens the port) can reach it.

data "aws_caller_identity" "current" {}

resource "timescale_vpcs" "main" {
  count       = local.managed ? 1 : 0
  name        = var.name
  cidr        = var.timescale_vpc_cidr
  region_code = data.aws_region.current.name
}

resource "timescale_service" "main" {
  count             = local.managed ? 1 : 0
  name              = var.name
  milli_cpu         = var.timescale_milli_cpu
  memory_gb         = var.timescale_memory_gb
  region_code       = data.aws_region.current.name
  password          = var.passwords["owner"]
  enable_ha_replica = var.timescale_ha_replica
  vpc_id            = timescale_vpcs.main[0].id
}

resource "timescale_service" "read_replica" {
  count               = local.replica ? 1 : 0
  name                = "${var.name}-read"
  read_replica_source = timescale_service.main[0].id
  vpc_id              = timescale_vpcs.main[0].id
}

resource "timescale_peering_connection" "main" {
  count            = local.managed ? 1 : 0
  peer_account_id  = data.aws_caller_identity.current.account_id
  peer_region_code = data.aws_region.current.name
  peer_vpc_id      = var.vpc_id
  timescale_vpc_id = timescale_vpcs.main[0].id
}

resource "aws_vpc_peering_connection_accepter" "timescale" {
  count                     = local.managed ? 1 : 0
  vpc_peering_connection_id = timescale_peering_connection.main[0].provisioned_id
  auto_accept               = true
  tags                      = { Name = "${var.name}-timescale" }
}

resource "aws_route" "timescale" {
  count                     = local.managed ? length(var.private_route_table_ids) : 0
  route_table_id            = var.private_route_table_ids[count.index]
  destination_cidr_block    = var.timescale_vpc_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.timescale[0].id
}
