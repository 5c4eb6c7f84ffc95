# One internet-facing ALB for all replicas. It speaks gRPC (HTTP/2) on both sides and routes
# each request by its host name (gRPC sends it as :authority): FACILITY.<ingest_domain> goes
# to the target group of the replica that facility is pinned to. A host name of no known
# facility gets a 404 and reaches no replica.

locals {
  # A rule's host-header condition holds at most 3 names: one rule per 3 facilities.
  rules = flatten([
    for replica in sort(keys(var.replicas)) : [
      for i, chunk in chunklist(sort(var.replicas[replica]), 3) : {
        key     = "${replica}-${i}"
        replica = replica
        hosts   = [for f in chunk : "${f}.${var.ingest_domain}"]
      }
    ]
  ])
}

resource "aws_lb" "ingest" {
  name                       = "${substr(var.name, 0, 25)}-ingest"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.platform.public_subnet_ids
  security_groups            = [aws_security_group.lb.id]
  drop_invalid_header_fields = true
  idle_timeout               = var.idle_timeout_s
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.platform.logs_bucket
    prefix  = "alb/ingest"
    enabled = true
  }
  #checkov:skip=CKV2_AWS_28:Reachable only from gateway_cidrs and every stream is authenticated by token; AWS managed WAF rules inspect bodies as text and block binary protobuf batches (SizeRestrictions_BODY), so a WAF would drop data.
}

resource "aws_lb_listener" "ingest" {
  load_balancer_arn = aws_lb.ingest.arn
  port              = var.listener_port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "unknown facility host name"
      status_code  = "404"
    }
  }
}

resource "aws_lb_target_group" "replica" {
  for_each             = var.replicas
  name                 = "${substr(var.name, 0, 16)}-${each.key}"
  vpc_id               = var.platform.vpc_id
  target_type          = "ip"
  port                 = local.grpc_port
  protocol             = "HTTPS"
  protocol_version     = "GRPC"
  deregistration_delay = 30 # gateways reconnect and resume from their last ack

  health_check {
    enabled             = true
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = "/grpc.health.v1.Health/Check"
    matcher             = "0" # gRPC status OK
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "facility" {
  for_each     = { for i, rule in local.rules : rule.key => merge(rule, { priority = i + 1 }) }
  listener_arn = aws_lb_listener.ingest.arn
  priority     = each.value.priority

  condition {
    host_header {
      values = each.value.hosts
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.replica[each.value.replica].arn
  }
}

resource "aws_route53_record" "ingest" {
  count   = var.route53_zone_id == null ? 0 : 1
  zone_id = var.route53_zone_id
  name    = "*.${var.ingest_domain}"
  type    = "A"
  alias {
    name                   = aws_lb.ingest.dns_name
    zone_id                = aws_lb.ingest.zone_id
    evaluate_target_health = false
  }
}

# --- Firewall ----------------------------------------------------------------------------
# Gateways -> load balancer (listener port, gateway_cidrs only) -> tasks (gRPC port, from
# the load balancer only). Metrics: from inside the VPC only.

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-ingest-lb-"
  description = "Ingest load balancer: the listener port from gateways only"
  vpc_id      = var.platform.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_from_gateways" {
  for_each          = toset(var.gateway_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "gRPC over TLS from gateways"
  ip_protocol       = "tcp"
  from_port         = var.listener_port
  to_port           = var.listener_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_to_tasks" {
  security_group_id            = aws_security_group.lb.id
  description                  = "gRPC to ingest tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.grpc_port
  to_port                      = local.grpc_port
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_security_group" "task" {
  name_prefix = "${var.name}-ingest-task-"
  description = "Ingest tasks: gRPC from the load balancer, metrics from the VPC"
  vpc_id      = var.platform.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "task_from_lb" {
  security_group_id            = aws_security_group.task.id
  description                  = "gRPC from the ingest load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.grpc_port
  to_port                      = local.grpc_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_ingress_rule" "task_metrics" {
  security_group_id = aws_security_group.task.id
  description       = "Prometheus metrics of ingest and the FSE, from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = local.metrics_port
  to_port           = local.fse_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS: S3, Secrets Manager, SSM, CloudWatch Logs, image registry"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
