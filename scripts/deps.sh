#!/usr/bin/env bash
# Installs the Debian packages the build and tests need when they are missing:
# cmake and nasm build the bundled libjpeg-turbo (with its SIMD code); ffmpeg
# (its ffmpeg and ffprobe programs) decodes video sources.
set -euo pipefail
need=()
for tool in cmake nasm ffmpeg; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (libjpeg-turbo build, video decoding)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
