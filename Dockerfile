# syntax=docker/dockerfile:1
# mongo-kafka-relay image: docker build -t mongo-kafka-relay:0.1.0 .

# ---- build: full dependency tree, compile TypeScript (tsconfig.build.json -> dist/src) ----
FROM node:20-slim AS build
WORKDIR /app
# mongodb-memory-server (a dev dependency, tests only) must not download a MongoDB binary here.
ENV MONGOMS_DISABLE_POSTINSTALL=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled output only ----
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
# Fixed non-root uid/gid 10001 (the Kubernetes manifests set runAsUser 10001 and
# runAsNonRoot). The app files stay owned by root: the relay never writes to them.
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relay
USER 10001:10001
# /metrics, /healthz, /readyz (set METRICS_HOST=0.0.0.0 to listen beyond loopback).
EXPOSE 9464
# The relay handles SIGTERM itself: it stops reading, drains in-flight events and writes its
# last checkpoint within RELAY_SHUTDOWN_TIMEOUT_MS (25 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
