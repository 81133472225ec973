# Apache Kafka (KRaft, broker and controller in one JVM) from the Maven jars that scripts/kafka.sh
# fetches, on Debian's OpenJDK 17. The broker listens on 127.0.0.1 only (host networking):
#   KAFKA_PORT (client) and KAFKA_CONTROLLER_PORT; data in /var/lib/kafka.
# /opt/kafka/bin/kafka-topics.sh and kafka-broker-api-versions.sh are the usual tools.
ARG BASE_IMAGE=duban-local/debian:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /opt/kafka/bin /opt/kafka/config /var/lib/kafka
COPY libs /opt/kafka/libs
COPY server.properties.template log4j2.properties tools-log4j2.properties /opt/kafka/config/
COPY kafka-run kafka-tool /opt/kafka/bin/
RUN ln -s kafka-tool /opt/kafka/bin/kafka-topics.sh \
 && ln -s kafka-tool /opt/kafka/bin/kafka-broker-api-versions.sh \
 && ln -s kafka-tool /opt/kafka/bin/kafka-storage.sh
ENV KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093
ENTRYPOINT ["/opt/kafka/bin/kafka-run"]
