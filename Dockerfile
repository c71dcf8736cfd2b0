# One image for every Puente service; SERVICE picks which one runs.
#   docker build -t puente .   then   docker run -e SERVICE=gateway puente
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY libs libs
COPY services services
COPY test test
COPY bench bench
RUN npm ci --no-audit --no-fund && npx tsc -b && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER node
ENV SERVICE=gateway
# NODE_FLAGS: V8 flags that NODE_OPTIONS does not allow (the realtime service ships --optimize-for-size).
CMD ["sh", "-c", "exec node $NODE_FLAGS services/$SERVICE/dist/main.js"]
