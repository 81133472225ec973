# The local stand-in for python:3.11-slim-bookworm: Debian bookworm's Python 3.11 with venv and
# pip, on the base image scripts/images.sh makes with debootstrap (no image registry needed).
# Built with --network host: apt-get reaches Debian's packages as the machine does.
ARG BASE_IMAGE=duban-local/debian:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
# The certificate authorities the machine trusts beyond Debian's (its local ones, if any: a
# proxy in front of the package registries may need them), so that pip inside the builds
# reaches PyPI as the machine does. pip's own venvs read them through PIP_CERT.
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
