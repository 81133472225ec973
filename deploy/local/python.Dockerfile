# The local stand-in for python:3.11-slim-bookworm, on the base image scripts/images.sh makes
# with debootstrap (no image registry needed). The interpreter is the CPython 3.11 the project's
# .venv runs on (scripts/bootstrap.sh), copied into /usr/local without its site-packages and
# test suite: Debian bookworm's own python3 is 3.11.2, older than requirements.lock allows
# (soupsieve 4.1.4 needs 3.11.5 or newer). Built with --network host: apt-get reaches Debian's
# packages as the machine does.
ARG BASE_IMAGE=duban-local/debian:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# the shared libraries CPython's extension modules link against
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libffi8 zlib1g libbz2-1.0 \
      liblzma5 libsqlite3-0 libreadline8 libncursesw6 libgdbm6 libuuid1 \
 && rm -rf /var/lib/apt/lists/*
COPY python/ /usr/local/
RUN ldconfig \
 && mkdir -p /usr/local/lib/python3.11/site-packages \
 && ln -sf python3.11 /usr/local/bin/python3 \
 && ln -sf python3.11 /usr/local/bin/python \
 && python -c "import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, venv, ensurepip"
# The certificate authorities the machine trusts beyond Debian's (its local ones, if any: a
# proxy in front of the package registries may need them), so that pip inside the builds
# reaches PyPI as the machine does. pip reads them through PIP_CERT.
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
