"""S3 as the product meets it: bucket policies whose conditions are evaluated (moto ignores conditions)."""
