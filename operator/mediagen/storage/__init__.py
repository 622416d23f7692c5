"""Object storage for generated media: Cloudflare R2 (or any S3-compatible server) through boto3."""
