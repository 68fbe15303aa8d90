# The Coalesce REST API as a container image, for deploy/compose.yaml.
# NOT built or run in this repository's tests (Docker was not available where it was written).
# Build from the repository root:
#   docker build -f deploy/docker/api.Dockerfile -t coalesce-cloud-api:local .
FROM python:3.11-slim-bookworm

# The project's base dependencies include the client's (Qt, OpenCV, PyAV, aiortc): pip installs their
# manylinux wheels although the API never imports them.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/coalesce-cloud --shell /usr/sbin/nologin coalesce \
 && install -d -o coalesce -g coalesce -m 0700 /var/lib/coalesce-cloud

WORKDIR /src
# Only what the package needs (no .git, .venv or tests in the image).
COPY pyproject.toml README.md ./
COPY coalesce_common ./coalesce_common
COPY coalesce_client ./coalesce_client
COPY coalesce_receiver ./coalesce_receiver
COPY coalesce_cloud ./coalesce_cloud
RUN pip install --no-cache-dir ".[cloud]" \
 && cd / && rm -rf /src

WORKDIR /var/lib/coalesce-cloud
USER coalesce
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 443
ENTRYPOINT ["coalesce-cloud"]
CMD ["serve", "--config", "/etc/coalesce/coalesce-cloud.toml", "--host", "0.0.0.0", "--port", "443"]
