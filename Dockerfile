# sentiment-server as a container: a Hugging Face Docker Space (port 7860) or any host.
#   docker build -t sentiment-server .
#   docker run -p 7860:7860 -e HF_TOKEN=hf_xxx -e SENTIMENT_DATASET=owner/name sentiment-server
# The build step is the README's: cargo build --release -p sentiment-server

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p sentiment-server

FROM debian:bookworm-slim
# CA roots for the Hub's HTTPS; the distribution's current version is what we want.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Spaces run containers as UID 1000. A Space's persistent storage mounts at /data; without it
# /data is the container's own layer, and the server says so loudly at start and on /healthz.
RUN useradd --uid 1000 --create-home user && mkdir -p /data && chown user /data
COPY --from=build /src/target/release/sentiment-server /usr/local/bin/sentiment-server
USER 1000
WORKDIR /home/user
ENV SENTIMENT_ADDR=0.0.0.0:7860 \
    SENTIMENT_DATA_DIR=/data \
    SENTIMENT_TRUSTED_PROXY_HOPS=1
EXPOSE 7860
CMD ["sentiment-server"]
