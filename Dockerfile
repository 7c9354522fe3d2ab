# syntax=docker/dockerfile:1
# mongo-kafka-relay image:
#   docker build -t mongo-kafka-relay:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The runtime stage is reproduced without Docker by test/process/runtime-stage.test.ts, which reads
# THIS file and performs each runtime-stage instruction in a temporary directory (it fails on an
# instruction it does not know how to reproduce): keep the runtime stage to COPY, ENV, WORKDIR,
# LABEL, USER, EXPOSE, STOPSIGNAL, ENTRYPOINT, CMD and the RUN commands that test knows.

# Node.js 24 (Active LTS until October 2026, maintained until April 2028).
ARG NODE_IMAGE=node:24-slim

# ---- build: full dependency tree, compile TypeScript (tsconfig.build.json -> dist/src) ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# mongodb-memory-server (a dev dependency, tests only) must not download a MongoDB binary here.
ENV MONGOMS_DISABLE_POSTINSTALL=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled output only ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/mongo-kafka-relay/mongo-kafka-relay
LABEL org.opencontainers.image.title="mongo-kafka-relay" \
      org.opencontainers.image.description="Relays MongoDB change streams to Kafka, keyed by change ID" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# Inside a container the loopback is useless to Prometheus and the kubelet's probes: listen on all
# interfaces (the schema default, 127.0.0.1, suits a process on a laptop).
ENV METRICS_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
# `mongo-kafka-relay` on PATH, so `kubectl exec <pod> -- mongo-kafka-relay token show` works.
RUN chmod 0755 dist/src/cli/main.js \
    && ln -s /app/dist/src/cli/main.js /usr/local/bin/mongo-kafka-relay
# Fixed non-root uid/gid 10001 (the Kubernetes manifests set runAsUser 10001 and
# runAsNonRoot). The app files stay owned by root: the relay never writes to them.
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relay
USER 10001:10001
# /metrics, /healthz, /readyz.
EXPOSE 9464
# Node runs as PID 1 and the daemon (`start`) handles SIGTERM and SIGINT itself: it stops reading,
# drains in-flight events and writes its last checkpoint within RELAY_SHUTDOWN_TIMEOUT_MS (25 s by
# default). PID 1 gets no default signal handlers from the kernel, so the short CLI commands (which
# install none) ignore Ctrl-C: run them with `docker run --init` (tini) when interactive.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["start"]
