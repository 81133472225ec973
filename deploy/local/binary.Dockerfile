# A Go program built on this machine (Jaeger, Mailpit: scripts/images.sh builds them from their
# Go modules) in the local base image. BINARY names the file of the build context.
ARG BASE_IMAGE=duban-local/debian:bookworm
FROM ${BASE_IMAGE}
ARG BINARY
COPY ${BINARY} /${BINARY}
COPY etc /etc/duban
RUN ln -s "/${BINARY}" /usr/local/bin/duban-run
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/duban-run"]
