# One image for every Puente service; SERVICE picks which one runs.
#   docker build -t puente .   then   docker run -e SERVICE=gateway puente
# The operator CLI is in the image too: docker run --rm puente node cli/bin/puente.js status
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY libs libs
COPY services services
COPY cli cli
COPY test test
COPY bench bench
RUN npm ci --no-audit --no-fund && npx tsc -b && npm prune --omit=dev
# Only what runs (deploy/image-files.sh): compiled JavaScript and package.json of each runtime workspace, no
# sources, tests, fixtures, declarations, maps, local-stack tooling, end-to-end tests or benchmarks.
COPY deploy/image-files.sh deploy/image-files.sh
RUN sh deploy/image-files.sh /out && rm -f node_modules/@puente/stack node_modules/@puente/e2e node_modules/@puente/bench

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /out/libs libs
COPY --from=build /out/services services
COPY --from=build /out/cli cli
USER node
ENV SERVICE=gateway
# NODE_FLAGS: V8 flags that NODE_OPTIONS does not allow (the realtime service ships --optimize-for-size).
CMD ["sh", "-c", "exec node $NODE_FLAGS services/$SERVICE/dist/main.js"]
