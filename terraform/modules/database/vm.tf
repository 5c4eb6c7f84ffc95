# mode = "vm": one EC2 instance in a private subnet running the official TimescaleDB image
# under Docker. Data lives on its own encrypted EBS volume, so replacing the instance (a new
# AMI, another size) keeps the database; AWS Backup snapshots the volume daily. No SSH and
# no public address: administer it through SSM Session Manager.

locals {
  vm = var.mode == "vm"
  # A fixed address: the connection secrets can be written before the instance exists (the
  # instance reads the owner password from one at boot), and a replaced instance keeps it.
  vm_address = cidrhost(var.private_subnet_cidrs[0], 10)
}

data "aws_subnet" "vm" {
  count = local.vm ? 1 : 0
  id    = var.private_subnet_ids[0]
}

data "aws_ssm_parameter" "al2023" {
  count = local.vm ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.vm_architecture}"
}

resource "aws_security_group" "vm" {
  count       = local.vm ? 1 : 0
  name_prefix = "${var.name}-timescaledb-"
  description = "TimescaleDB VM: the database port from database clients only"
  vpc_id      = var.vpc_id
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "vm_from_clients" {
  count                        = local.vm ? 1 : 0
  security_group_id            = aws_security_group.vm[0].id
  description                  = "PostgreSQL from ingest, dashboard and migrate tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.client.id
}

resource "aws_vpc_security_group_egress_rule" "vm_https" {
  count             = local.vm ? 1 : 0
  security_group_id = aws_security_group.vm[0].id
  description       = "HTTPS out through NAT: image pulls, packages, SSM, Secrets Manager"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_instance" "vm" {
  count                       = local.vm ? 1 : 0
  ami                         = data.aws_ssm_parameter.al2023[0].value
  instance_type               = var.vm_instance_type
  subnet_id                   = var.private_subnet_ids[0]
  private_ip                  = local.vm_address
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.vm[0].id]
  iam_instance_profile        = aws_iam_instance_profile.vm[0].name
  ebs_optimized               = true
  monitoring                  = true
  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/timescaledb-vm.sh.tftpl", {
    region       = data.aws_region.current.name
    volume_id    = aws_ebs_volume.data[0].id
    secret_arn   = aws_secretsmanager_secret.role["owner"].arn
    image        = var.timescaledb_image
    database     = local.dbname
    cluster_name = var.name
  })

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1          # containers on the VM cannot reach the metadata service
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = { Name = "${var.name}-timescaledb" }

  lifecycle {
    ignore_changes = [ami] # a newer AMI alone does not replace the database host
  }
  depends_on = [aws_secretsmanager_secret_version.role]
}

resource "aws_ebs_volume" "data" {
  count             = local.vm ? 1 : 0
  availability_zone = data.aws_subnet.vm[0].availability_zone
  size              = var.vm_data_volume_gb
  type              = "gp3"
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = { Name = "${var.name}-timescaledb-data", Backup = var.name }
}

resource "aws_volume_attachment" "data" {
  count       = local.vm ? 1 : 0
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[0].id
  instance_id = aws_instance.vm[0].id
}

# --- The VM's identity: SSM for administration, read its owner password ---------------------

resource "aws_iam_role" "vm" {
  count = local.vm ? 1 : 0
  name  = "${var.name}-timescaledb-vm"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "vm_ssm" {
  count      = local.vm ? 1 : 0
  role       = aws_iam_role.vm[0].name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "vm_owner_secret" {
  count = local.vm ? 1 : 0
  name  = "read-owner-password"
  role  = aws_iam_role.vm[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "secretsmanager:GetSecretValue", Resource = aws_secretsmanager_secret.role["owner"].arn },
      { Effect = "Allow", Action = "kms:Decrypt", Resource = var.kms_key_arn },
    ]
  })
}

resource "aws_iam_instance_profile" "vm" {
  count = local.vm ? 1 : 0
  name  = "${var.name}-timescaledb-vm"
  role  = aws_iam_role.vm[0].name
}

# --- Daily backups of the data volume -------------------------------------------------------

resource "aws_backup_vault" "vm" {
  count       = local.vm ? 1 : 0
  name        = "${var.name}-timescaledb"
  kms_key_arn = var.kms_key_arn
}

resource "aws_backup_plan" "vm" {
  count = local.vm ? 1 : 0
  name  = "${var.name}-timescaledb-daily"
  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.vm[0].name
    schedule          = "cron(0 3 * * ? *)"
    lifecycle {
      delete_after = var.backup_retention_days
    }
  }
}

resource "aws_backup_selection" "vm" {
  count        = local.vm ? 1 : 0
  name         = "timescaledb-data"
  plan_id      = aws_backup_plan.vm[0].id
  iam_role_arn = aws_iam_role.backup[0].arn
  resources    = [aws_ebs_volume.data[0].arn]
}

resource "aws_iam_role" "backup" {
  count = local.vm ? 1 : 0
  name  = "${var.name}-timescaledb-backup"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "backup.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "backup" {
  count      = local.vm ? 1 : 0
  role       = aws_iam_role.backup[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
}
