# Sourced by bench/s3.sh and bench/s3_build.sh (from the repository root):
# the AWS CLI from its cached venv ($py, $aws), and s3_server WORK, which starts a Garage server
# in WORK/garage (the caller's trap stops it) and exports the AWS settings both tools read,
# setting $ep (endpoint) and $b (bucket).
py="$(scripts/venv.sh awscli)"
aws="$(dirname "$py")/aws"
s3_server() {
  # shellcheck source=/dev/null
  source "$(scripts/garage.sh start "$1/garage")"
  ep="$IMGPREP_S3_ENDPOINT" b="$IMGPREP_S3_BUCKET"
  export AWS_ACCESS_KEY_ID="$IMGPREP_S3_KEY" AWS_SECRET_ACCESS_KEY="$IMGPREP_S3_SECRET" \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$ep" \
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
}
