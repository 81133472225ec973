# PostgreSQL 15 from Debian bookworm's packages (the version of postgres:15-bookworm), with an
# entry point that does what the official image's does for our compose file: on an empty data
# dir, initdb with POSTGRES_USER and POSTGRES_PASSWORD, then the scripts of
# /docker-entrypoint-initdb.d. It listens on 127.0.0.1:PGPORT only (host networking).
ARG BASE_IMAGE=duban-local/debian:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# no Debian "main" cluster: the entry point makes the one cluster, in PGDATA
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/duban.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-run /usr/local/bin/postgres-run
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data PGPORT=5432 \
    PGHOST=/var/run/postgresql
USER postgres
ENTRYPOINT ["/usr/local/bin/postgres-run"]
