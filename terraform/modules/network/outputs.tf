output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC (metrics are reachable from inside it only)."
  value       = aws_vpc.main.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone: load balancers and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone: tasks and the database VM."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets, in the order of private_subnet_ids."
  value       = aws_subnet.private[*].cidr_block
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets (a managed database's peering adds its route here)."
  value       = aws_route_table.private[*].id
}
