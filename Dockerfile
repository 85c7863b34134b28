# Dovie's container image: the `dovie` binary on a slim Debian with the preview tools (ffmpeg
# for video poster frames and audio, pdftoppm for a PDF's first page).
#
#   docker build -t dovie/dovie:0.1.0 .
#   docker run -p 8080:8080 -v dovie-data:/var/lib/dovie dovie/dovie:0.1.0
#
# Nothing here needs a shell at run time: the entrypoint and the health check are exec form,
# and the health check is the binary itself (`dovie health`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin dovie \
    && install -D -m 0755 target/release/dovie /out/dovie

FROM debian:bookworm-slim
# Versions follow the Debian release the tag names (security updates included); pinning exact
# package versions would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates ffmpeg poppler-utils \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 dovie \
    && useradd --system --uid 10001 --gid dovie --home-dir /var/lib/dovie --no-create-home dovie \
    && install -d -o dovie -g dovie -m 0750 /var/lib/dovie
COPY --from=build /out/dovie /usr/local/bin/dovie
USER 10001:10001
ENV DOVIE_LISTEN=0.0.0.0:8080 \
    DOVIE_DATA_DIR=/var/lib/dovie
EXPOSE 8080
VOLUME ["/var/lib/dovie"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/dovie", "health", "--addr", "127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/dovie"]
CMD ["serve"]
