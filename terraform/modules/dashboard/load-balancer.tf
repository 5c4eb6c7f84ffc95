resource "aws_lb" "dashboard" {
  name                       = "${substr(var.name, 0, 22)}-dashboard"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.platform.public_subnet_ids
  security_groups            = [aws_security_group.lb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.platform.logs_bucket
    prefix  = "alb/dashboard"
    enabled = true
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.dashboard.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dashboard.arn
  }
}

# /metrics is open on the task for scrapers inside the VPC; not through the load balancer.
resource "aws_lb_listener_rule" "no_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1
  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }
  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.dashboard.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_target_group" "dashboard" {
  name        = "${substr(var.name, 0, 22)}-dashboard"
  vpc_id      = var.platform.vpc_id
  target_type = "ip"
  port        = local.port
  protocol    = "HTTP"
  #checkov:skip=CKV_AWS_378:`locowatch dashboard` (uvicorn) serves plain HTTP only; this hop stays in the private subnets and the task's security group admits only the load balancer.

  # Live updates travel over a websocket per page: keep a browser on one task.
  stickiness {
    type    = "lb_cookie"
    enabled = true
  }

  health_check {
    enabled             = true
    protocol            = "HTTP"
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_route53_record" "dashboard" {
  count   = var.route53_zone_id == null ? 0 : 1
  zone_id = var.route53_zone_id
  name    = var.dashboard_domain
  type    = "A"
  alias {
    name                   = aws_lb.dashboard.dns_name
    zone_id                = aws_lb.dashboard.zone_id
    evaluate_target_health = false
  }
}

# --- WAF: AWS managed rules (common exploits, known bad inputs such as Log4Shell, anonymous
# sources) and a rate limit per address

resource "aws_wafv2_web_acl" "dashboard" {
  name  = "${var.name}-dashboard"
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dashboard-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dashboard-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "anonymous-ip"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
        # Only counted: a company VPN may well leave from a cloud provider's addresses.
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dashboard-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit"
    priority = 4
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = 2000 # requests per 5 minutes per address
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dashboard-rate"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-dashboard"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "dashboard" {
  resource_arn = aws_lb.dashboard.arn
  web_acl_arn  = aws_wafv2_web_acl.dashboard.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}-dashboard" # WAF requires this prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = var.platform.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "dashboard" {
  resource_arn            = aws_wafv2_web_acl.dashboard.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

# --- Firewall: users -> load balancer (443, and 80 for the redirect) -> tasks (8050) ---------

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-dashboard-lb-"
  description = "Dashboard load balancer: HTTPS (and the HTTP redirect) from dashboard_cidrs"
  vpc_id      = var.platform.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_https" {
  for_each          = toset(var.dashboard_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "HTTPS from dashboard users"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "lb_http" {
  for_each          = toset(var.dashboard_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "HTTP from dashboard users, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_to_tasks" {
  security_group_id            = aws_security_group.lb.id
  description                  = "HTTP to dashboard tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_security_group" "task" {
  name_prefix = "${var.name}-dashboard-task-"
  description = "Dashboard tasks: HTTP from the load balancer only"
  vpc_id      = var.platform.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "task_from_lb" {
  security_group_id            = aws_security_group.task.id
  description                  = "HTTP from the dashboard load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS: S3, Secrets Manager, CloudWatch Logs, image registry"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
