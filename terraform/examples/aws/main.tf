# A complete cloud side: network, secrets, TimescaleDB, the shared cluster and config bucket,
# the migrate task, the ingest replicas and the dashboard. Copy this directory to start a
# deployment of your own (terraform/README.md).

module "secrets" {
  source           = "../../modules/secrets"
  name             = var.name
  gateways         = var.gateways
  token_generation = var.token_generation
}

module "network" {
  source      = "../../modules/network"
  name        = var.name
  cidr        = var.vpc_cidr
  kms_key_arn = module.secrets.kms_key_arn
}

module "database" {
  source                  = "../../modules/database"
  name                    = var.name
  mode                    = var.database_mode
  kms_key_arn             = module.secrets.kms_key_arn
  passwords               = module.secrets.database_passwords
  vpc_id                  = module.network.vpc_id
  private_subnet_ids      = module.network.private_subnet_ids
  private_subnet_cidrs    = module.network.private_subnet_cidrs
  private_route_table_ids = module.network.private_route_table_ids
}

module "cluster" {
  source         = "../../modules/cluster"
  name           = var.name
  kms_key_arn    = module.secrets.kms_key_arn
  facility_files = var.facility_files
  app_uid        = var.app_uid
}

# What the three apps (migrate, ingest, the dashboard) share; each module declares the part
# it reads.
locals {
  platform = {
    cluster_arn                       = module.cluster.cluster_arn
    cluster_name                      = module.cluster.cluster_name
    config_bucket                     = module.cluster.config_bucket
    config_bucket_arn                 = module.cluster.config_bucket_arn
    config_sync                       = module.cluster.config_sync
    facility_etags                    = module.cluster.facility_etags
    logs_bucket                       = module.cluster.logs_bucket
    kms_key_arn                       = module.secrets.kms_key_arn
    vpc_id                            = module.network.vpc_id
    public_subnet_ids                 = module.network.public_subnet_ids
    private_subnet_ids                = module.network.private_subnet_ids
    database_client_security_group_id = module.database.client_security_group_id
  }
}

module "migrate" {
  source    = "../../modules/migrate"
  name      = var.name
  image     = var.image
  platform  = local.platform
  retention = var.retention
  database_secret_arns = {
    owner  = module.database.owner_secret_arn
    writer = module.database.writer_secret_arn
    reader = module.database.reader_secret_arn
  }
  database_users = {
    writer = module.database.writer_user
    reader = module.database.reader_user
  }
  run_on_apply = var.run_migrations_on_apply
}

module "ingest" {
  source                     = "../../modules/ingest"
  name                       = var.name
  image                      = var.image
  platform                   = local.platform
  replicas                   = var.replicas
  gateways                   = var.gateways
  gateway_token_sha256       = module.secrets.gateway_token_sha256
  ingest_domain              = var.ingest_domain
  certificate_arn            = var.ingest_certificate_arn
  route53_zone_id            = var.route53_zone_id
  listener_port              = var.ingest_port
  gateway_cidrs              = var.gateway_cidrs
  retention                  = var.retention
  deletion_protection        = var.deletion_protection
  vpc_cidr                   = module.network.vpc_cidr
  database_writer_secret_arn = module.database.writer_secret_arn
  migration_done             = module.migrate.done
}

module "dashboard" {
  source                     = "../../modules/dashboard"
  name                       = var.name
  image                      = var.image
  platform                   = local.platform
  certificate_arn            = var.dashboard_certificate_arn
  dashboard_domain           = var.dashboard_domain
  route53_zone_id            = var.route53_zone_id
  dashboard_cidrs            = var.dashboard_cidrs
  users                      = var.dashboard_users
  deletion_protection        = var.deletion_protection
  database_reader_secret_arn = module.database.reader_secret_arn
}
